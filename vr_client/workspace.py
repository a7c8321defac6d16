"""The interactive client: panels, the editor, the controller, the keyboard and prompt panels, the autosave and
the input producers, put together. Hosts call `before_frame(t)` once per frame; nothing here draws.

The session reopens from its file when one exists (every panel with its full history); otherwise it starts
with one empty panel. Input producers (webcam hands, microphone) are optional: one that cannot start says so
on the prompt panel and the others keep working.
"""
from __future__ import annotations

import queue
from dataclasses import dataclass, field
from pathlib import Path

from airquill.shared.protocol import Sampling
from airquill.vr_client.app import ClientApp
from airquill.vr_client.controller import Controller, Locate
from airquill.vr_client.document import show
from airquill.vr_client.editor import Editor, EditorConfig
from airquill.vr_client.input.airwriting import AirWriter
from airquill.vr_client.input.keyboard import VirtualKeyboard, keyboard_panel
from airquill.vr_client.scene import EYE_HEIGHT, READING_DISTANCE, Panel, Scene, arc_placement
from airquill.vr_client.session_store import DEFAULT_SESSION, Autosave, open_session


@dataclass(frozen=True)
class WorkspaceConfig:
    session: Path = DEFAULT_SESSION
    autosave_s: float = 2.0
    output: Path = Path("book/output")
    length: int = 64
    steps: int = 32
    keyboard: bool = True
    air_writing: bool = True  # pinch strokes drawn beside the panels become letters
    hands: bool = False  # webcam hand tracking (MediaPipe)
    camera: int = 0
    calibrate: bool = False  # run the four-corner pointer calibration even if one is saved
    voice: bool = False  # microphone speech (Vosk)
    vosk_model: str | None = None  # default: $AIRQUILL_VOSK_MODEL
    language: str = "en"


@dataclass
class Workspace:
    app: ClientApp
    config: WorkspaceConfig = WorkspaceConfig()
    inputs: queue.Queue = field(default_factory=queue.Queue)  # producers put events here
    producers: list = field(default_factory=list)  # objects with stop(); started by their owners

    scene: Scene | None = None  # a prepared scene (the book view); its panels take their histories from the session

    def __post_init__(self) -> None:
        session = self.config.session.expanduser()
        saved_scene, histories = open_session(session) if session.exists() else (None, {})
        if self.scene is not None:
            histories = {p.panel_id: histories[p.panel_id] for p in self.scene.panels if p.panel_id in histories}
            for panel in self.scene.panels:
                if panel.panel_id in histories and histories[panel.panel_id].current is not None:
                    show(panel.text, histories[panel.panel_id].current.tokens)
        elif saved_scene is not None:
            self.scene = saved_scene
        else:
            self.scene = Scene()
            self.scene.add(Panel("panel-1", selected=True))
        sampling = Sampling(steps=self.config.steps)
        self.editor = Editor(self.scene, self.app, EditorConfig(length=self.config.length, sampling=sampling,
                                                               output=self.config.output))
        self.editor.histories.update(histories)
        self.autosave = Autosave(session, self.scene, self.editor.histories, interval=self.config.autosave_s)
        self.keyboard = VirtualKeyboard() if self.config.keyboard else None
        keys = self.scene.add(keyboard_panel(self.keyboard)) if self.keyboard else None
        self.prompt = self.scene.add(Panel("prompt", position=(0.0, EYE_HEIGHT - 0.36, -READING_DISTANCE * 0.8),
                                           width=1.0, height=0.12, em=0.03, persist=False))
        self.controller = Controller(self.editor, lambda panel, x, y: None, keyboard=self.keyboard,
                                     keyboard_panel=keys,
                                     writer=AirWriter() if self.config.air_writing else None)
        self.hands = None
        if not any(p.selected for p in self.scene.panels) and self.scene.panels:
            self.controller.select(self.scene.panels[0])
        self._shown = None

    def seed(self, prompts: list[str]) -> None:
        """A new session's first panels, on an arc, each condensing one prompt."""
        first = next(p for p in self.scene.panels if p.persist)
        self.scene.panels.remove(first)
        placements = arc_placement(len(prompts), spread_deg=40)
        for i, ((position, yaw), prompt) in enumerate(zip(placements, prompts)):
            panel = self.scene.add(Panel(f"panel-{i + 1}", position=position, yaw=yaw, width=0.62, height=0.5))
            self.editor.generate(panel, prompt, seed=i)
        self.controller.select(next(p for p in self.scene.panels if p.persist))

    def attach(self, locate: Locate) -> None:
        """The host's hit test (its renderer's `token_at`), once the host exists."""
        self.controller.locate = locate

    def start_inputs(self) -> None:
        """Start the webcam and microphone producers the config asks for; one that cannot start puts an
        `InputUnavailable` on the queue (shown on the prompt line) and the rest carries on."""
        if self.config.hands:
            from airquill.vr_client.input.calibration import Calibration, CalibrationSession
            from airquill.vr_client.input.hands import WebcamHands

            self.hands = WebcamHands(self.inputs, camera_index=self.config.camera)
            try:
                saved = None if self.config.calibrate else Calibration.load()
            except (FileNotFoundError, ValueError):
                saved = None
            if saved is None:
                self.controller.calibration = CalibrationSession()
            self.hands.recognizer.calibration = saved
            self.producers.append(self.hands.start())
        if self.config.voice:
            from airquill.vr_client.input.voice import MicrophoneVoice, VoiceConfig

            voice = MicrophoneVoice(self.inputs, config=VoiceConfig(model_path=self.config.vosk_model,
                                                                    language=self.config.language))
            if voice.start():
                self.producers.append(voice)

    def before_frame(self, t: float) -> None:
        self.app.drain(self.scene)
        self.controller.drain(self.inputs)
        self._finish_calibration()
        self.autosave.tick(t)
        self._show_prompt()

    def _finish_calibration(self) -> None:
        session = self.controller.calibration
        if session is None or not session.done:
            return
        self.controller.calibration = None
        try:
            path = session.calibration.save()
            self.controller.tell(f"pointer calibrated (saved to {path})")
        except OSError as err:
            self.controller.tell(f"pointer calibrated, but it could not be saved: {err}")
        if self.hands is not None:
            self.hands.recognizer.calibration = session.calibration

    def _show_prompt(self) -> None:
        """The prompt line: what is typed, what is being heard, and the latest message."""
        c = self.controller
        line = f"› {c.typed}{(' ' + c.listening) if c.listening else ''}▏"
        note = self.autosave.error or (self.editor.messages[-1] if self.editor.messages else "")
        if c.calibration is not None:
            line = c.calibration.prompt
        if (line, note) != self._shown:
            self._shown = (line, note)
            show(self.prompt.text, [(-1, line)])
            self.prompt.title = note
            self.prompt.touch()

    def close(self) -> None:
        for producer in self.producers:
            producer.stop()
        self.autosave.save()
