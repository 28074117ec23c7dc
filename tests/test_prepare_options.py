"""Nested prepare options: one model per component, the 0.1 flat layout still loads and hashes the same."""

from __future__ import annotations

import json

import pytest

from hilbert_cli.errors import ConfigError
from hilbert_cli.prepare.options import AsrOptions, DiarizationOptions, PrepareOptions, VadOptions
from hilbert_cli.prepare.pipeline import config_hash

#: PrepareOptions of `hilbert demo` as hilbert 0.1 recorded them in a words table's metadata
#: (flat layout), and the config hash 0.1 gave them: the work directories it wrote must resume
FLAT_01 = {
    "diarization": "vad-cluster", "diarization_model": None, "speaker_encoder": "resemblyzer", "num_speakers": 2,
    "min_speakers": None, "max_speakers": None, "cluster_threshold": 0.45, "min_speaker_share": 0.1,
    "spread_ratio": 1.8, "vad_threshold": 0.5, "min_speech_s": 0.25, "min_silence_s": 0.3, "speech_pad_s": 0.1,
    "embed_window_s": 1.6, "embed_step_s": 0.8, "diarization_window_s": 600.0, "link_threshold": 0.6,
    "speaker": "participant", "prompts": None, "asr_model": "whisper-tiny.en", "device": "cpu",
    "compute_type": "auto", "beam_size": 1, "language": None, "vad_filter": False, "temperature_fallback": True,
    "condition_on_previous_text": False, "asr_window_s": 30.0, "batch_size": 8, "asr_workers": 0, "cpu_threads": 0,
    "transcripts": None, "sidecars": True, "chunk_s": 30.0,
}
HASH_01 = {"demo": "507f0bf0433017e1", "default": "08d9484922d6038d"}


def test_the_01_flat_layout_loads_nested_and_keeps_its_hash():
    opts = PrepareOptions.from_recorded(FLAT_01)
    assert opts.asr.model == "whisper-tiny.en" and opts.asr.beam_size == 1
    assert opts.diarization.backend == "vad-cluster" and opts.diarization.num_speakers == 2
    assert opts.vad.threshold == 0.5 and opts.speaker == "participant"
    flat = opts.flat()
    assert flat.pop("clustering") == "tree" and flat == FLAT_01  # a choice added after 0.1, at its old behaviour
    assert config_hash(opts) == HASH_01["demo"]
    # 0.1's default diarization was the tree (on Resemblyzer, which the tree implies); today's
    # defaults (nap-kmeans on CAM++) have their own hash
    assert config_hash(PrepareOptions(clustering="tree")) == HASH_01["default"]
    assert config_hash(PrepareOptions(clustering="tree", speaker_encoder="resemblyzer")) == HASH_01["default"]
    assert config_hash(PrepareOptions()) not in HASH_01.values()
    # the nested form round-trips, and is what the flat keyword arguments build
    nested = json.loads(opts.model_dump_json())
    assert set(nested["asr"]) == set(AsrOptions.model_fields) and "asr_model" not in nested
    assert PrepareOptions.model_validate(nested) == opts
    assert PrepareOptions(diarization="vad-cluster", num_speakers=2, asr_model="whisper-tiny.en", beam_size=1,
                          speaker="participant", device="cpu", clustering="tree", speaker_encoder="resemblyzer",
                          embed_step_s=0.8) == opts


def test_recorded_options_without_clustering_read_as_the_tree_new_ones_keep_theirs():
    """`clustering` came after 0.1: a recording without it was diarized by the tree, so it must
    rebuild as the tree (flat or nested), while options typed today get the nap-kmeans default."""
    assert PrepareOptions.model_validate(FLAT_01).diarization.clustering == "nap-kmeans"  # today's flags
    nested = json.loads(PrepareOptions(num_speakers=2).model_dump_json())
    assert nested["diarization"].pop("clustering") == "nap-kmeans"
    assert PrepareOptions.from_recorded(nested).diarization.clustering == "tree"
    assert PrepareOptions.from_recorded({"diarization": "vad-cluster"}).diarization.clustering == "tree"
    for c in ("tree", "nap-kmeans"):
        recorded = json.loads(PrepareOptions(clustering=c).model_dump_json())
        assert PrepareOptions.from_recorded(recorded).diarization.clustering == c
        assert PrepareOptions.from_recorded({**FLAT_01, "clustering": c}).diarization.clustering == c


def test_flat_keys_win_over_a_nested_dict_beside_them():
    """A recorded (nested) options dict edited with 0.1 keys, as an old tool would."""
    nested = json.loads(PrepareOptions(num_speakers=2, asr_model="whisper-base").model_dump_json())
    nested.update(diarization="pyannote", diarization_model="/some/pipeline", asr_window_s=20.0)
    opts = PrepareOptions.model_validate(nested)
    assert opts.diarization.backend == "pyannote" and opts.diarization.model == "/some/pipeline"
    assert opts.asr.window_s == 20.0 and opts.asr.model == "whisper-base"  # the nested rest is kept
    nested = json.loads(PrepareOptions(min_speakers=2).model_dump_json())
    nested["max_speakers"] = 3
    assert PrepareOptions.model_validate(nested).diarization.min_speakers == 2


def test_runtime_options_stay_out_of_the_hash_output_options_change_it():
    base = PrepareOptions()
    assert config_hash(base) == config_hash(PrepareOptions(asr=AsrOptions(workers=3, batch_size=2), cpu_threads=1))
    assert config_hash(base) != config_hash(PrepareOptions(asr=AsrOptions(beam_size=1)))
    assert config_hash(base) != config_hash(PrepareOptions(vad=VadOptions(threshold=0.4)))
    assert config_hash(base) != config_hash(PrepareOptions(diarization=DiarizationOptions(num_speakers=2)))


def test_bad_values_are_one_line_errors_naming_the_nested_option():
    with pytest.raises(ConfigError, match=r"diarization.*min_speakers \(3\) > max_speakers \(2\)"):
        PrepareOptions.build(min_speakers=3, max_speakers=2)
    with pytest.raises(ConfigError, match=r"asr\.beam_size"):
        PrepareOptions.build(beam_size=0)
    with pytest.raises(ConfigError, match="no_such_option"):
        PrepareOptions.build(no_such_option=1)


def test_each_component_gets_only_its_own_options():
    from hilbert_cli.prepare.diarize import load_diarizer

    d = load_diarizer(PrepareOptions(num_speakers=1, chunk_s=10.0, vad_threshold=0.4))
    assert isinstance(d.options, DiarizationOptions) and isinstance(d.vad_options, VadOptions)
    assert d.vad_options.threshold == 0.4 and d.chunk_s == 10.0 and d.encoder is None


def test_a_trained_models_flat_prepare_options_still_rebuild(tmp_path):
    """scoring/stages.py:stage_options reads the prepare options a model directory recorded (0.1: flat)."""
    from types import SimpleNamespace

    from hilbert_cli.scoring.stages import stage_options

    meta = {"prepare": {"options": FLAT_01}, "embed_options": {"audio": "spec", "text": "allMiniLM6"}}
    prep, _ = stage_options(meta, SimpleNamespace(device="cpu", transcripts=None), untrusted_root=tmp_path)
    assert prep.asr.model == "whisper-tiny.en" and prep.diarization.num_speakers == 2
    assert config_hash(prep) == HASH_01["demo"]


def test_score_never_carries_the_training_machines_thread_budget(tmp_path):
    """A words table prepared with `--jobs 4` records asr.workers = 4 and cpu_threads; scoring with
    that model on another machine must use its own defaults (runtime-only options), not those."""
    from types import SimpleNamespace

    from hilbert_cli.scoring.stages import stage_options

    recorded = {**FLAT_01, "asr_workers": 4, "cpu_threads": 3, "batch_size": 2}
    meta = {"prepare": {"options": recorded}, "embed_options": {"audio": "spec", "text": "allMiniLM6"}}
    prep, _ = stage_options(meta, SimpleNamespace(device="cpu", transcripts=None), untrusted_root=tmp_path)
    fresh = PrepareOptions()
    assert (prep.asr.workers, prep.cpu_threads, prep.asr.batch_size) == \
        (fresh.asr.workers, fresh.cpu_threads, fresh.asr.batch_size)
    assert config_hash(prep) == HASH_01["demo"]  # runtime-only: the hash never saw them


def test_clustering_enters_the_hash_only_where_vad_cluster_clusters():
    """A pyannote or one-speaker work dir made before nap-kmeans became the default must resume,
    not be redone: the clustering choice changes nothing there, so it stays out of their hash."""
    for opts in ({"diarization": "pyannote"}, {"num_speakers": 1}, {"diarization": "none"}):
        assert "clustering" not in PrepareOptions(**opts).hashed()
        assert config_hash(PrepareOptions(**opts)) == config_hash(PrepareOptions(**opts, clustering="tree"))
    assert config_hash(PrepareOptions(num_speakers=2)) != config_hash(PrepareOptions(num_speakers=2, clustering="tree"))


#: config hashes the code before the CAM++ encoder (b9f84fc) gave: work directories made then,
#: where the output does not change, must keep resuming (no speaker encoder runs, or Resemblyzer)
HASH_BEFORE_CAMPPLUS = {
    "pyannote": ({"diarization": "pyannote"}, "1b0f65b648d41916"),
    "none": ({"diarization": "none"}, "fa330df8a766a98f"),
    "one speaker": ({"num_speakers": 1}, "bfc0c9823392c9de"),
    "resemblyzer nap-kmeans": ({"speaker_encoder": "resemblyzer"}, "c3e0bd61e6ddb48e"),
}


@pytest.mark.parametrize("case", sorted(HASH_BEFORE_CAMPPLUS))
def test_hashes_made_before_the_speaker_encoder_choice_are_kept(case):
    kw, before = HASH_BEFORE_CAMPPLUS[case]
    assert config_hash(PrepareOptions(**kw)) == before


def test_the_tree_implies_resemblyzer_and_refuses_campplus():
    """The tree's cuts were tuned on Resemblyzer: on CAM++ they invented speakers."""
    assert PrepareOptions(clustering="tree").diarization.speaker_encoder == "resemblyzer"
    assert PrepareOptions().diarization.speaker_encoder == "campplus"
    with pytest.raises(ConfigError, match="clustering tree is tuned on the resemblyzer speaker encoder"):
        PrepareOptions.build(clustering="tree", speaker_encoder="campplus")
