"""Loading models offline, and the clear errors when a model cannot be used."""
from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

from airquill.server.models.bidirectional import BidirectionalAdapter
from airquill.server.models.loader import load_adapter, resolve
from airquill.server.sampling.drivers import iter_denoise
from airquill.server.sampling.masked import MaskedDenoiser
from airquill.server.sampling.options import SamplingOptions


def _tiny_bert(tokenizer, path, *, with_mask: bool):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertForMaskedLM(config).save_pretrained(path)
    backend = tokenizer.backend_tokenizer
    kwargs = {"pad_token": "<pad>"} | ({"mask_token": "<mask>"} if with_mask else {})
    PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs).save_pretrained(path)
    return path


def test_missing_path_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="model path does not exist"):
        load_adapter("/no/such/model")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve("./relative/missing")


def test_folder_without_config(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        load_adapter(str(tmp_path))


def test_hub_ids_download_only_when_named():
    assert resolve("someone/some-model") == ("someone/some-model", True)
    source, download = resolve(None)
    assert not download and source.endswith("kjv-masked")


def test_model_without_mask_token(tokenizer, tmp_path):
    path = _tiny_bert(tokenizer, tmp_path / "nomask", with_mask=False)
    with pytest.raises(ValueError, match="no mask token"):
        load_adapter(str(path))


def test_plain_masked_lm_generates(tokenizer, tmp_path):
    path = _tiny_bert(tokenizer, tmp_path / "bert", with_mask=True)
    adapter = load_adapter(str(path))
    assert isinstance(adapter, BidirectionalAdapter) and adapter.new_cache() is None
    state = MaskedDenoiser.for_generation(adapter, "In the beginning", 12, SamplingOptions(steps=4))
    steps = list(iter_denoise(adapter, state))
    assert len(steps) == 4 and adapter.mask_id not in state.output_ids


def test_shifted_logits_adapter(tokenizer, tmp_path):
    """Dream's logits at i predict token i+1: a stand-in with the same interface (a tiny BERT) checks that
    the adapter reads the canvas's logits one position earlier."""
    path = _tiny_bert(tokenizer, tmp_path / "bert", with_mask=True)
    plain = load_adapter(str(path))
    shifted = BidirectionalAdapter(plain.model, plain.tokenizer, name="dream-stand-in", logit_shift=1)
    state = MaskedDenoiser.for_generation(shifted, "In the beginning", 8, SamplingOptions(steps=2))
    request = state.next_forward()
    (mine,) = shifted.forward([request])
    full = plain.model(input_ids=request.ids[None]).logits[0]
    start, end = request.canvas
    assert start == 0  # the canvas starts at the first token, which no logits predict
    torch.testing.assert_close(mine[0], torch.zeros_like(mine[0]))
    torch.testing.assert_close(mine[1:], full[start : end - 1].float())
