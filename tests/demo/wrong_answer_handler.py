# A demo handler that returns a str where (status, body) is expected: a 500 that says so.
async def handle(request):
    return "hello"


handle_awaiting_cpp = handle
