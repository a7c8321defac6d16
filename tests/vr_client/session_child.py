"""A client process for the kill -9 test: it edits a panel against the server named in AIRQUILL_URL, autosaves
to the session file given as argv[1], and prints each revision (as JSON) once the autosave has written it.
Then it keeps a request in flight until it is killed."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from airquill.shared.protocol import Sampling
from airquill.vr_client.app import ClientApp
from airquill.vr_client.editor import Editor, EditorConfig
from airquill.vr_client.scene import Panel, Scene
from airquill.vr_client.session_store import Autosave


def main() -> None:
    app = ClientApp(os.environ["AIRQUILL_URL"], token=os.environ["AIRQUILL_TOKEN"]).start()
    scene = Scene()
    panel = scene.add(Panel("p1"))
    editor = Editor(scene, app, EditorConfig(length=32, sampling=Sampling(steps=8)))
    autosave = Autosave(Path(sys.argv[1]), scene, editor.histories, interval=0.2)

    def frames_until(done) -> None:
        while not done():
            app.drain(scene)
            autosave.tick(time.monotonic())
            time.sleep(0.01)

    def announce() -> None:  # wait for the autosave that includes this revision, then tell the test
        count = editor.revision_count
        frames_until(lambda: autosave.writes and autosave.last_written and _written_count(autosave) >= count)
        print(json.dumps({"text": panel.text.text}), flush=True)

    editor.generate(panel, "And it came to pass", seed=7)
    frames_until(lambda: not app.busy(panel))
    announce()
    panel.selection = (4, 12)
    editor.rewrite(panel, seed=8)
    frames_until(lambda: not app.busy(panel))
    announce()
    panel.selection = (0, 2)
    editor.replace(panel, "Behold, ")
    announce()
    while True:  # a request always in flight when the kill comes
        panel.selection = (2, 10)
        editor.rewrite(panel)
        frames_until(lambda: not app.busy(panel))


def _written_count(autosave: Autosave) -> int:
    data = json.loads(autosave.last_written)
    return sum(len(p["history"]["revisions"]) for p in data["panels"])


if __name__ == "__main__":
    main()
