"""Voice input: Vosk speech recognition, offline, streaming PCM16 mono audio into `Utterance` and `VoiceCommand`
events; a microphone producer thread; a WAV-file path for tests and the `--voice-file` demo.

Vosk and sounddevice are imported lazily (vosk is an optional extra, sounddevice needs the system's PortAudio
library), so importing this module is cheap and never fails. Whatever is missing (model, PortAudio, microphone)
becomes one `InputUnavailable('voice', message)` telling the user how to fix it; the other inputs keep working.
"""
from __future__ import annotations

import json
import os
import queue
import threading
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airquill.vr_client.input.commands import LANGUAGES, grammar, parse_command
from airquill.vr_client.input.events import InputUnavailable, Utterance, VoiceCommand

if TYPE_CHECKING:
    import vosk

MODEL_ENV = "AIRQUILL_VOSK_MODEL"
MODELS_URL = "https://alphacephei.com/vosk/models"
SUPPORTED_RATES = (8000, 11025, 16000, 22050, 32000, 44100, 48000)  # Vosk resamples these to the model's rate
VoiceEvent = Utterance | VoiceCommand


@dataclass(frozen=True)
class VoiceConfig:
    """How to recognise speech. `model_path=None` reads the AIRQUILL_VOSK_MODEL environment variable when the
    model is needed (not when the config is made). `grammar_mode` restricts recognition to the command phrases
    (or `grammar_phrases`): robust commands, no dictation. `language` picks the command table ('en', 'ru');
    other languages (a model we have no commands for) recognise text only and need `grammar_phrases` for
    grammar mode."""

    model_path: str | os.PathLike[str] | None = None
    sample_rate: int = 16000
    language: str = "en"
    grammar_mode: bool = False
    grammar_phrases: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.sample_rate not in SUPPORTED_RATES:
            raise ValueError(f"sample_rate {self.sample_rate} is not one of {SUPPORTED_RATES}")
        if self.grammar_phrases is not None:
            object.__setattr__(self, "grammar_phrases", tuple(self.grammar_phrases))
        if self.grammar_mode and self.grammar_phrases is None and self.language not in LANGUAGES:
            raise ValueError(f"grammar mode for language {self.language!r} needs grammar_phrases "
                             f"(built-in command phrases exist for {', '.join(LANGUAGES)})")

    def grammar(self) -> list[str]:
        """The phrase list passed to Vosk in grammar mode."""
        return grammar(self.language, phrases=self.grammar_phrases)


class VoiceUnavailable(RuntimeError):
    """Voice input cannot run here; the message says what is missing and how to fix it."""

    @property
    def event(self) -> InputUnavailable:
        return InputUnavailable("voice", str(self))


def _model_hint() -> str:
    return (f"Download vosk-model-small-en-us (English) or vosk-model-small-ru (Russian) from {MODELS_URL}, "
            f"unzip it, and point airquill at the unzipped folder: set "
            f"{MODEL_ENV}=/path/to/vosk-model-small-en-us-0.15 or pass the folder as VoiceConfig(model_path=...).")


def resolve_model_path(config: VoiceConfig) -> Path:
    """The model folder from the config or the environment; checked for Vosk's layout (cheap, before loading)."""
    raw = config.model_path if config.model_path is not None else os.environ.get(MODEL_ENV) or None
    if raw is None:
        raise VoiceUnavailable(f"Voice input needs a Vosk speech model and none is configured ({MODEL_ENV} is not "
                               f"set). " + _model_hint())
    path = Path(raw).expanduser()
    origin = "model_path" if config.model_path is not None else MODEL_ENV
    if not path.is_dir():
        raise VoiceUnavailable(f"Voice input: no Vosk model folder at {path} (from {origin}). " + _model_hint())
    if not ((path / "am" / "final.mdl").is_file() or (path / "final.mdl").is_file()):
        raise VoiceUnavailable(f"Voice input: {path} (from {origin}) is not a Vosk model folder (no am/final.mdl; "
                               f"point at the unzipped folder itself, not its parent or the zip). " + _model_hint())
    return path


def _import_vosk() -> Any:
    try:
        import vosk
    except ImportError as e:
        raise VoiceUnavailable(f"Voice input needs the vosk package ({e}): pip install vosk "
                               "(or pip install 'airquill[input]').") from e
    vosk.SetLogLevel(-1)  # no Kaldi LOG lines (model loading is chatty); WARNINGs (e.g. grammar words not in the
    # model's vocabulary) still reach stderr
    return vosk


def load_model(config: VoiceConfig) -> vosk.Model:
    """Load the Vosk model (seconds for a small model): share one between recognisers of the same language."""
    path = resolve_model_path(config)
    vosk = _import_vosk()
    try:
        return vosk.Model(str(path))
    except Exception as e:  # vosk raises a bare Exception("Failed to create a model")
        raise VoiceUnavailable(f"Voice input: Vosk could not load the model at {path} ({e}). "
                               + _model_hint()) from e


class VoiceRecognizer:
    """One `vosk.KaldiRecognizer` fed PCM16 mono chunks. `feed` returns the events the chunk produced: a partial
    `Utterance` when the live text changed (never empty, never a repeat), a final `Utterance` when Vosk detects
    the end of an utterance, and a `VoiceCommand` after a final that starts with a command. An empty final is
    reported only if partials were shown (so the UI can clear them). `t` is seconds of audio fed so far, or
    `clock()` when given (the microphone uses time.monotonic, like the other producers)."""

    def __init__(self, config: VoiceConfig, *, model: vosk.Model | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        vosk = _import_vosk()
        self.config = config
        self.model = model if model is not None else load_model(config)
        if config.grammar_mode:
            # ensure_ascii=False: Vosk does not decode \u escapes, so Cyrillic or Hangul phrases would be dropped.
            phrases = json.dumps(config.grammar(), ensure_ascii=False)
            self._rec = vosk.KaldiRecognizer(self.model, float(config.sample_rate), phrases)
        else:
            self._rec = vosk.KaldiRecognizer(self.model, float(config.sample_rate))
        self._clock = clock
        self._samples = 0
        self._partial = ""

    @property
    def audio_seconds(self) -> float:
        return self._samples / self.config.sample_rate

    def _now(self) -> float:
        return self._clock() if self._clock is not None else self.audio_seconds

    def feed(self, chunk: bytes) -> list[VoiceEvent]:
        """Recognise one chunk of 16-bit little-endian mono samples at `config.sample_rate`."""
        if len(chunk) % 2:
            raise ValueError(f"PCM16 audio comes in 2-byte samples; got a chunk of {len(chunk)} bytes")
        if not chunk:
            return []
        self._samples += len(chunk) // 2
        if self._rec.AcceptWaveform(bytes(chunk)):
            return self._final(json.loads(self._rec.Result()).get("text", ""))
        partial = json.loads(self._rec.PartialResult()).get("partial", "")
        if not partial or partial == self._partial:
            return []
        self._partial = partial
        return [Utterance(partial, False, self._now())]

    def finish(self) -> list[VoiceEvent]:
        """Flush: the final result of the audio fed since the last final (end of stream or push-to-talk release)."""
        return self._final(json.loads(self._rec.FinalResult()).get("text", ""))

    def reset(self) -> None:
        """Drop the audio of the current utterance without a result."""
        self._rec.Reset()
        self._partial = ""

    def _final(self, text: str) -> list[VoiceEvent]:
        t, shown, self._partial = self._now(), self._partial, ""
        if not text and not shown:
            return []
        events: list[VoiceEvent] = [Utterance(text, True, t)]
        if self.config.language in LANGUAGES:
            command = parse_command(text, language=self.config.language)
            if command is not None:
                events.append(VoiceCommand(command.name, command.argument, command.language, t))
        return events


def read_wav(path: str | os.PathLike[str]) -> tuple[bytes, int]:
    """The samples and rate of a mono PCM16 WAV at a supported rate; a clear ValueError for anything else."""
    # -t wavpcm: a plain PCM header; Python's wave module (before 3.12) cannot read WAVE_FORMAT_EXTENSIBLE
    fix = f"convert it with: sox {path} -r 16000 -c 1 -b 16 -e signed-integer -t wavpcm out.wav"
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as e:
        raise ValueError(f"{path} is not a PCM WAV file ({e}); {fix}") from e
    if channels != 1:
        raise ValueError(f"{path} has {channels} channels; voice input needs mono audio: {fix}")
    if width != 2:
        raise ValueError(f"{path} has {8 * width}-bit samples; voice input needs 16-bit PCM: {fix}")
    if rate not in SUPPORTED_RATES:
        raise ValueError(f"{path} is sampled at {rate} Hz; supported: {SUPPORTED_RATES}: {fix}")
    return frames, rate


def transcribe_wav(path: str | os.PathLike[str], config: VoiceConfig, *, chunk_ms: int = 100,
                   model: vosk.Model | None = None) -> list[VoiceEvent]:
    """Stream a WAV through a recogniser in `chunk_ms` chunks, as a microphone would, and flush at the end. The
    file's own rate is used. Checks the file before loading any model."""
    if chunk_ms <= 0:
        raise ValueError(f"chunk_ms must be positive, got {chunk_ms}")
    frames, rate = read_wav(path)
    recognizer = VoiceRecognizer(replace(config, sample_rate=rate), model=model)
    step = max(1, rate * chunk_ms // 1000) * 2
    events: list[VoiceEvent] = []
    for start in range(0, len(frames), step):
        events += recognizer.feed(frames[start:start + step])
    return events + recognizer.finish()


class MicrophoneVoice:
    """The voice producer: captures the microphone with sounddevice in a thread and puts voice events on `out`.
    `start()` checks the cheap things at once (model folder, PortAudio, an input device) and returns False after
    putting an `InputUnavailable` when one is missing; the model loads in the thread (seconds)."""

    def __init__(self, out: queue.Queue[Any], *, config: VoiceConfig, model: vosk.Model | None = None,
                 device: int | str | None = None, block_ms: int = 100) -> None:
        self.out, self.config, self.model, self.device, self.block_ms = out, config, model, device, block_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        if self.running:
            return True
        try:
            if self.model is None:
                resolve_model_path(self.config)
            _import_vosk()
        except VoiceUnavailable as e:
            self.out.put(e.event)
            return False
        try:
            import sounddevice as sd  # lazy: needs the system's PortAudio library
        except (ImportError, OSError) as e:
            self.out.put(InputUnavailable("voice", (
                f"Voice input needs microphone capture, but sounddevice could not load ({e}). Install the PortAudio "
                "library (Debian/Ubuntu: apt-get install libportaudio2; Fedora: dnf install portaudio; macOS: brew "
                "install portaudio) and pip install sounddevice, then restart. Other inputs keep working.")))
            return False
        try:
            sd.query_devices(self.device, kind="input")
        except Exception as e:  # PortAudioError, or ValueError for no/unknown device
            which = "the default input device" if self.device is None else f"input device {self.device!r}"
            self.out.put(InputUnavailable("voice", (
                f"Voice input: no microphone ({which}: {e}). Connect or enable a microphone (check the system's "
                "sound settings and that this user may record audio), or pick another with the device option; "
                "python -m sounddevice lists the devices. Other inputs keep working.")))
            return False
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(sd,), name="airquill-voice", daemon=True)
        self._thread.start()
        return True

    def stop(self, *, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self, sd: Any) -> None:
        blocks: queue.Queue[bytes] = queue.Queue(maxsize=100)  # ~10 s of audio; older audio is dropped if full

        def on_audio(indata: Any, frames: int, time_info: Any, status: Any) -> None:
            try:
                blocks.put_nowait(bytes(indata))
            except queue.Full:
                pass

        try:
            model = self.model if self.model is not None else load_model(self.config)
            config, stream = self._open_stream(sd, on_audio)
            recognizer = VoiceRecognizer(config, model=model, clock=time.monotonic)
        except VoiceUnavailable as e:
            self.out.put(e.event)
            return
        except Exception as e:  # PortAudioError while opening the stream
            self.out.put(InputUnavailable("voice", f"Voice input: the microphone could not be opened ({e}). "
                                                   "Check that no other program holds it exclusively."))
            return
        try:
            with stream:
                while not self._stop.is_set():
                    try:
                        chunk = blocks.get(timeout=0.1)
                    except queue.Empty:
                        continue
                    for event in recognizer.feed(chunk):
                        self.out.put(event)
        except Exception as e:  # PortAudioError: the device went away or refused to start
            self.out.put(InputUnavailable("voice", f"Voice input stopped: the microphone failed ({e})."))
        for event in recognizer.finish():
            self.out.put(event)

    def _open_stream(self, sd: Any, callback: Callable[..., None]) -> tuple[VoiceConfig, Any]:
        """A raw int16 mono stream at the configured rate, or at the device's own rate if it refuses that one
        (Vosk resamples)."""
        rates = [self.config.sample_rate]
        default = int(sd.query_devices(self.device, kind="input")["default_samplerate"])
        if default in SUPPORTED_RATES and default not in rates:
            rates.append(default)
        for i, rate in enumerate(rates):
            try:
                stream = sd.RawInputStream(samplerate=rate, blocksize=rate * self.block_ms // 1000, dtype="int16",
                                           channels=1, device=self.device, callback=callback)
                return replace(self.config, sample_rate=rate), stream
            except sd.PortAudioError:
                if i == len(rates) - 1:
                    raise
        raise AssertionError("unreachable")


def final_texts(events: Sequence[VoiceEvent]) -> list[str]:
    """The final texts of a list of events, in order (what was said, one entry per utterance)."""
    return [e.text for e in events if isinstance(e, Utterance) and e.final]
