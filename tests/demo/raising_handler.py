# A demo handler that raises: every response is a 500 naming the error, and the demo exits 1.
async def handle(request):
    raise ValueError("no name for you")


handle_awaiting_cpp = handle
