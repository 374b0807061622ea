"""Regenerate the README's screenshots (SVG) from the demo logs:

    .venv/bin/python docs/make_screenshots.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from audittui.findings import load_rules
from audittui.history import History
from audittui.session import Session
from audittui.tui.app import AuditApp
from audittui.tui.event_list import EventList

HERE = Path(__file__).resolve().parent
DEMO = str(HERE.parent / "demo-logs")


async def shoot(name: str, size: tuple[int, int], keys: list[str], text: str = "") -> None:
    session = Session([DEMO], follow=False)
    session.open()
    app = AuditApp(
        session, history=History(Path(tempfile.mkdtemp()) / "h"), rules=load_rules(False)
    )
    async with app.run_test(size=size) as pilot:
        while session.indexing or len(app.view) < len(app.store):
            await pilot.pause(0.05)
        if text:
            await pilot.press("slash", *text, "enter")
            while app.view.text != text:
                await pilot.pause(0.05)
        await pilot.press(*keys)
        await pilot.pause(0.5)
        while "4" in keys and app.findings.upto < len(app.store):
            await pilot.pause(0.1)
        await pilot.pause(0.3)
        app.save_screenshot(str(HERE / name))
    session.close()


async def main() -> None:
    await shoot("list-and-detail.svg", (160, 42), ["g", "e", "e", "e"], "ns:prod -verb:watch")
    await shoot("summary.svg", (120, 30), ["2"])
    await shoot("small-terminal.svg", (80, 24), ["k", "k"], "code:403")
    await shoot("findings.svg", (120, 32), ["4", "down", "down"])


if __name__ == "__main__":
    asyncio.run(main())
    print("wrote", ", ".join(p.name for p in HERE.glob("*.svg")))
