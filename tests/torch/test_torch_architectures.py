"""The pruning path on the architectures users bring, built small from their
transformers configs with random weights: prune (Wanda, 2:4), a
compressed-tensors checkpoint loaded into a fresh model of the same config,
and torch.export, each giving the pruned model's outputs."""
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from sparsecore.torch import (  # noqa: E402
    CompactNMLinear,
    load_compressed_tensors,
    prune,
    save_compressed_tensors,
)

H = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
BERTLIKE = dict(H, intermediate_size=128)
DECODER = dict(H, intermediate_size=128, num_key_value_heads=2)

# name: (model class, config class, config arguments, inputs: "ids" or "pixels")
ARCHITECTURES = {
    "bert": ("BertModel", "BertConfig", BERTLIKE, "ids"),
    "roberta": ("RobertaModel", "RobertaConfig", BERTLIKE, "ids"),
    "distilbert": ("DistilBertModel", "DistilBertConfig",
                   {"dim": 64, "hidden_dim": 128, "n_layers": 2, "n_heads": 4}, "ids"),
    "albert": ("AlbertModel", "AlbertConfig", dict(BERTLIKE, embedding_size=32), "ids"),
    "electra": ("ElectraModel", "ElectraConfig", dict(BERTLIKE, embedding_size=32), "ids"),
    "mpnet": ("MPNetModel", "MPNetConfig", BERTLIKE, "ids"),
    "deberta-v2": ("DebertaV2Model", "DebertaV2Config", BERTLIKE, "ids"),
    "t5": ("T5EncoderModel", "T5Config",
           {"d_model": 64, "d_ff": 128, "num_layers": 2, "num_heads": 4, "d_kv": 16}, "ids"),
    "bart": ("BartModel", "BartConfig",
             {"d_model": 64, "encoder_ffn_dim": 128, "decoder_ffn_dim": 128,
              "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
              "decoder_attention_heads": 4}, "ids"),
    "clip-text": ("CLIPTextModel", "CLIPTextConfig", BERTLIKE, "ids"),
    "vit": ("ViTModel", "ViTConfig", dict(BERTLIKE, image_size=32, patch_size=8), "pixels"),
    "gpt2": ("GPT2Model", "GPT2Config", {"n_embd": 64, "n_layer": 2, "n_head": 4}, "ids"),
    "gpt-neox": ("GPTNeoXModel", "GPTNeoXConfig", BERTLIKE, "ids"),
    "opt": ("OPTModel", "OPTConfig",
            dict(H, ffn_dim=128, word_embed_proj_dim=64), "ids"),
    "phi": ("PhiModel", "PhiConfig", BERTLIKE, "ids"),
    "llama": ("LlamaModel", "LlamaConfig", DECODER, "ids"),
    "mistral": ("MistralModel", "MistralConfig", DECODER, "ids"),
    "qwen2": ("Qwen2Model", "Qwen2Config", DECODER, "ids"),
}


def build(name):
    model_cls, config_cls, kwargs, _ = ARCHITECTURES[name]
    if not hasattr(transformers, model_cls):
        pytest.skip(f"transformers {transformers.__version__} has no {model_cls}")
    config = getattr(transformers, config_cls)(vocab_size=96, **kwargs)
    return getattr(transformers, model_cls), config


def batch(name, seed):
    g = torch.Generator().manual_seed(seed)
    if ARCHITECTURES[name][3] == "pixels":
        return {"pixel_values": torch.randn(2, 3, 32, 32, generator=g)}
    out = {"input_ids": torch.randint(3, 96, (2, 16), generator=g)}
    if name in ("bart", "gpt2", "gpt-neox", "opt", "phi", "llama", "mistral", "qwen2"):
        out["use_cache"] = False  # a cache object is no tensor output for torch.export
    return out


def hidden(out):
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_prune_save_load_export(name, tmp_path):
    cls, config = build(name)
    torch.manual_seed(0)
    dense = cls(config).eval()
    calibration = [batch(name, s) for s in range(2)]
    x = batch(name, 7)
    pruned = prune(dense, calibration, "2:4", "wanda", verbose=0)
    n_compact = sum(isinstance(m, CompactNMLinear) for m in pruned.modules())
    assert n_compact >= 6  # attention and MLP projections (ALBERT shares one block)
    with torch.no_grad():
        want = hidden(pruned(**x))
    scale = float(want.abs().max())

    save_compressed_tensors(pruned, tmp_path)
    loaded = load_compressed_tensors(tmp_path, cls(config).eval())
    assert sum(isinstance(m, CompactNMLinear) for m in loaded.modules()) == n_compact
    with torch.no_grad():
        got = hidden(loaded(**x))
    assert float((got - want).abs().max()) <= 1e-5 * scale

    torch._dynamo.reset()
    program = torch.export.export(pruned, (), kwargs=x)
    with torch.no_grad():
        exported = hidden(program.module()(**x))
    assert float((exported - want).abs().max()) <= 1e-5 * scale
