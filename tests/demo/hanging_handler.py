# A demo handler that never answers: with --timeout 1 each run ends after a second, its
# requests counted as missing, and the demo exits 1 (it never hangs).
import asyncio


async def handle(request):
    await asyncio.sleep(3600)


handle_awaiting_cpp = handle
