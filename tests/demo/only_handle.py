# A demo handler file that defines handle but not handle_awaiting_cpp: the demo names what is
# missing and exits 1.
async def handle(request):
    return 200, "hello"
