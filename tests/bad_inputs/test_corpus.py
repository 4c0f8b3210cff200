"""The bad-input corpus: generated films, frame folders, images, LoRA files, parameters and versions, each
with its exact outcome: an error that names the input and the cause, or a skip row with its reason."""

from __future__ import annotations

import pickle
import re
import struct
import zlib

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from animation_lora.backends.clip_tokenizer import clip_tokenizer
from animation_lora.characters import cluster_identities
from animation_lora.clustering import ClusteringParams, apply_names
from animation_lora.composition.lora_set import gather
from animation_lora.composition.prompts import build_requests
from animation_lora.datasets import read_lora
from animation_lora.datasets.export import ExportFolder
from animation_lora.datasets.film import Film, FilmDataset
from animation_lora.datasets.lora_file import LoraInputFolderDataset
from animation_lora.frames.dedup import Dedup
from animation_lora.frames.quality import Quality
from animation_lora.frames.sampling import FrameSampling
from animation_lora.ids import safe_name
from animation_lora.image_loop import map_images
from animation_lora.lora_format import LoraFile
from animation_lora.params import parse
from animation_lora.pipelines.preprocessing.character_nodes import CharacterDatasetParams
from animation_lora.pipelines.preprocessing.frame_nodes import filter_quality, ingest
from animation_lora.training import TrainConfig


def png(path, size=(64, 48), value=120):
    rng = np.random.default_rng(value)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def bomb(path, side=30000):
    """A PNG whose header declares side x side pixels (PIL refuses it before decoding anything)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


# --- frame folders: (files to write, the skipped file, its reason) -----------------------------------------
def write_truncated(p):
    png(p)
    p.write_bytes(p.read_bytes()[:40])


SKIPS = {
    "decompression bomb": ("f002.png", bomb, r"decompression bomb: Image size \(900000000 pixels\) exceeds"),
    "truncated png": ("f002.png", write_truncated, r"unreadable image: "),
    "zero-byte png": ("f002.png", lambda p: p.write_bytes(b""), r"unreadable image: cannot identify"),
    "text named .png": ("f002.png", lambda p: p.write_text("hello"), r"unreadable image: cannot identify"),
    "a .txt file": ("f002.txt", lambda p: p.write_text("notes"), r"not an image file \(\.txt\)"),
    "no suffix": ("f002", lambda p: p.write_text("x"), r"not an image file \(no suffix\)"),
    "another frame size": (
        "f002.png",
        lambda p: png(p, (32, 32)),
        r"frame size 32x32 differs from the film's 64x48",
    ),
    "a jpeg renamed .png, truncated": (
        "f002.png",
        lambda p: p.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 10),
        r"unreadable image: ",
    ),
}


@pytest.mark.parametrize("case", sorted(SKIPS))
def test_a_bad_frame_is_a_skip_row_with_its_name_and_reason(tmp_path, case, caplog):
    name, write, reason = SKIPS[case]
    for i in (0, 1, 3):
        png(tmp_path / f"f{i:03d}.png", value=i)
    write(tmp_path / name)
    log = ingest(Film(tmp_path, 24.0), FrameSampling())
    row = log[log.name == name].iloc[0]
    assert not row.readable and re.match(reason, row.problem), row.problem
    assert log.readable.sum() == 3
    assert f"skipped 1 unreadable frames (see frame_log), e.g. '{name}': " in caplog.text


def test_an_empty_frames_folder_is_named(tmp_path):
    with pytest.raises(ValueError, match=rf"Film '{tmp_path}' has no frames \(an empty folder"):
        ingest(Film(tmp_path, 24.0), FrameSampling())


def test_a_film_without_any_character_says_so():
    """Six noise frames through preprocessing used to end in pandas' "merge on float64 and object columns"."""
    no_rows = pd.DataFrame(columns=["instance_id", "embedding"])
    faces = pd.DataFrame(columns=["instance_id", "has_face"])
    params = parse(ClusteringParams, {"min_cluster_size": 15, "min_samples": 3}, "character_clustering")
    with pytest.raises(ValueError, match=r"No character was found in the film: the segmentation kept no "
                                         r"character instance — see layer_index"):
        cluster_identities(no_rows, faces, pd.DataFrame(columns=["instance_id", "frame_id"]), params)
    with pytest.raises(ValueError, match=r"none of the 2 character instances could be read"):
        cluster_identities(no_rows, faces, pd.DataFrame({"instance_id": ["a_0", "b_0"]}), params)


def test_a_folder_of_only_hidden_files_has_no_frames(tmp_path):
    (tmp_path / ".DS_Store").write_text("x")
    with pytest.raises(ValueError, match=rf"Film '{tmp_path}' has no frames"):
        ingest(Film(tmp_path, 24.0), FrameSampling())


@pytest.mark.parametrize("n", [1, 3])
def test_a_folder_of_only_unreadable_frames_is_named(tmp_path, n):
    for i in range(n):
        (tmp_path / f"f{i}.png").write_text("garbage")
    with pytest.raises(
        ValueError,
        match=rf"Film '{tmp_path}': none of its {n} frames is readable, e\.g\. "
        r"'f0\.png': unreadable image: cannot identify",
    ):
        ingest(Film(tmp_path, 24.0), FrameSampling())


def test_a_folder_with_only_a_bomb_is_named(tmp_path):
    bomb(tmp_path / "f0.png")
    with pytest.raises(
        ValueError, match=r"none of its 1 frames is readable, e\.g\. 'f0\.png': decompression"
    ):
        ingest(Film(tmp_path, 24.0), FrameSampling())


def test_a_one_frame_film_ingests_one_shot(tmp_path):
    png(tmp_path / "f0.png")
    log = ingest(Film(tmp_path, 24.0), FrameSampling())
    assert list(log.shot) == [0] and bool(log.cut.iloc[0])


# --- film files ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("empty", [None, "", "  "])
def test_an_empty_film_path_says_what_to_give(empty):
    """`--params film_path=` ended in `TypeError: expected str, bytes or os.PathLike object, not NoneType`."""
    for make in (lambda: FilmDataset(empty), lambda: ExportFolder("data/09_export", empty)):
        with pytest.raises(ValueError, match=r"`film_path` is empty: give the film, e\.g\. `kedro run"):
            make()


def test_a_missing_film_names_the_path_and_the_parameter(tmp_path):
    with pytest.raises(
        Exception, match=rf"Film not found at '{tmp_path / 'no.mp4'}' \(parameter `film_path`"
    ):
        FilmDataset(str(tmp_path / "no.mp4")).load()


@pytest.mark.parametrize(
    "content", [b"", b"not a video at all" * 10, b"\x00\x00\x00\x18ftypmp42" + b"\0" * 50]
)
def test_a_garbage_video_names_the_file(tmp_path, content):
    path = tmp_path / "film.mp4"
    path.write_bytes(content)
    with pytest.raises(Exception, match=re.escape(str(path))):
        FilmDataset(str(path)).load()


# --- parameters: a value out of range names its YAML path ---------------------------------------------------
AT_LEAST = "greater than or equal to"
PARAMS = [
    (FrameSampling, "preprocessing.sampling", "cut_threshold", -5.0, "greater than or equal to 0"),
    (FrameSampling, "preprocessing.sampling", "every_n_frames", 0, "greater than or equal to 1"),
    (FrameSampling, "preprocessing.sampling", "min_shot_frames", 0, "greater than or equal to 1"),
    (FrameSampling, "preprocessing.sampling", "target_fps", 0.0, "greater than 0"),
    (FrameSampling, "preprocessing.sampling", "cut_threshold", "high", "valid number"),
    (Dedup, "preprocessing.dedup", "hash_size", 1, "greater than or equal to 2"),
    (Dedup, "preprocessing.dedup", "max_hamming", -1, "greater than or equal to 0"),
    (Quality, "preprocessing.quality", "dark_mean", 300.0, "less than or equal to 255"),
    (Quality, "preprocessing.quality", "max_clipped_fraction", 2.0, "less than or equal to 1"),
    (Quality, "preprocessing.quality", "min_width", -1, "greater than or equal to 0"),
    (Quality, "preprocessing.quality", "blur_ratio", -0.1, "greater than or equal to 0"),
    (TrainConfig, "training.args", "optimizer_type", "Foo", "Input should be 'AdamW'"),
    (TrainConfig, "training.args", "lr_scheduler", "cosine_annealing", "Input should be 'constant'"),
    (TrainConfig, "training.args", "network_dim", "8", "valid integer"),
    (TrainConfig, "training.args", "missing_caption", "skip", "Input should be 'error' or 'trigger'"),
    # issue 25, 7: values that were accepted and then silently wrong (AT_LEAST: pydantic's words)
    (TrainConfig, "training.args", "validation_split", 1.5, "less than 1"),
    (TrainConfig, "training.args", "train_batch_size", 0, "greater than or equal to 1"),
    (TrainConfig, "training.args", "max_train_steps", 0, "greater than or equal to 1"),
    (ClusteringParams, "preprocessing.character_clustering", "min_cluster_size", 0, f"{AT_LEAST} 2"),
    (ClusteringParams, "background.scene_clustering", "similarity_threshold", 5.0, "less than or equal to 1"),
    (CharacterDatasetParams, "preprocessing.character_dataset", "min_images", -1, f"{AT_LEAST} 1"),
    (CharacterDatasetParams, "preprocessing.character_dataset", "target_size", 0, f"{AT_LEAST} 1"),
]


@pytest.mark.parametrize(
    "cls, path, key, value, cause", PARAMS, ids=[f"{p[1]}.{p[2]}={p[3]!r}" for p in PARAMS]
)
def test_a_bad_parameter_names_its_path_and_the_cause(cls, path, key, value, cause):
    with pytest.raises(
        ValueError,
        match=rf"`{re.escape(path)}\.{key}`: .*{re.escape(cause)}.*\(got {re.escape(repr(value))}\)",
    ):
        parse(cls, {key: value}, path)


def test_two_clusters_given_one_name_is_an_error():
    clusters = pd.DataFrame({"cluster": ["character_0", "character_1", "noise"]})
    with pytest.raises(ValueError, match=r"give 'marco' to 2 clusters \(character_0, character_1\)"):
        apply_names(clusters, {"character_0": "marco", "character_1": "marco"})


def test_a_template_that_fills_to_nothing_is_named():
    with pytest.raises(ValueError, match=r"Prompt 0 is empty \(template `\{pose\}`"):
        build_requests([], ["{pose}"], {}, {}, clip_tokenizer())
    with pytest.raises(ValueError, match=r"Prompt 0 is empty \(`composition\.prompts\[0\]`"):
        build_requests(["<lora:character:0.5>"], [], {"character": 1.0}, {}, clip_tokenizer())


def test_an_unknown_training_arg_is_named():
    with pytest.raises(ValueError, match=r"`training\.args\.netwrok_dim`: unknown key"):
        TrainConfig.from_params({"netwrok_dim": 8})


def test_every_frame_filtered_out_says_why(tmp_path):
    index = pd.DataFrame(
        {
            "frame_id": ["a", "b", "c"],
            "kept": True,
            "readable": True,
            "shot": 0,
            "width": 320,
            "height": 180,
            "brightness": [5.0, 6.0, 250.0],
            "clipped": 0.0,
            "sharpness": 100.0,
            "reason": "",
        }
    )
    with pytest.raises(
        ValueError,
        match=r"quality filter \(preprocessing\.quality\) dropped all 3 frames: "
        r"2 under-exposed, 1 over-exposed; see frame_index",
    ):
        filter_quality(index, Quality())


# --- LoRA files -----------------------------------------------------------------------------------------
class Payload:
    def __reduce__(self):
        return (print, ("pickle executed",))


LORA_FILES = {
    "text": lambda p: p.write_text("this is not a LoRA"),
    "empty": lambda p: p.write_bytes(b""),
    "pickle": lambda p: p.write_bytes(pickle.dumps({"w": Payload()})),
    "torch.save": lambda p: torch.save({"lora_unet_x.lora_down.weight": torch.zeros(2, 2)}, p),
    "truncated safetensors": lambda p: (
        save_file({"a": torch.zeros(64)}, str(p)),
        p.write_bytes(p.read_bytes()[:60]),
    ),
    "header length beyond the file": lambda p: p.write_bytes(struct.pack("<Q", 10**9) + b"{}"),
}


@pytest.mark.parametrize("case", sorted(LORA_FILES))
def test_an_unreadable_lora_file_names_the_file(tmp_path, case, capsys):
    path = tmp_path / "extra.safetensors"
    LORA_FILES[case](path)
    with pytest.raises(
        ValueError, match=rf"'{re.escape(str(path))}' is not a readable LoRA \.safetensors file"
    ):
        read_lora(path)
    assert "pickle executed" not in capsys.readouterr().out  # never unpickled


def test_an_unreadable_lora_in_the_extra_folder_names_it(tmp_path):
    (tmp_path / "bad.safetensors").write_text("x")
    with pytest.raises(Exception, match=r"bad\.safetensors' is not a readable LoRA"):
        LoraInputFolderDataset(str(tmp_path)).load()


def test_a_non_safetensors_file_in_the_extra_folder_is_named(tmp_path):
    (tmp_path / "style.ckpt").write_bytes(b"x")
    with pytest.raises(Exception, match=r"holds \['style\.ckpt'\]: only LoRA \.safetensors files"):
        LoraInputFolderDataset(str(tmp_path)).load()


def test_an_extra_lora_of_garbage_keys_is_named():
    extra = {"odd": LoraFile({"model.diffusion.weight": torch.zeros(2, 2)}, {})}
    with pytest.raises(
        ValueError,
        match=r"Extra LoRA 'odd\.safetensors' \(extra_loras\) holds no LoRA weights: "
        r"none of its 1 keys \(e\.g\. \['model\.diffusion\.weight'\]\)",
    ):
        gather({}, extra, {})


def test_an_extra_lora_named_like_a_trained_one_is_named():
    lora = LoraFile({"lora_unet_x.lora_down.weight": torch.zeros(2, 2)}, {})
    with pytest.raises(ValueError, match=r"\['character\.safetensors'\] in `extra_loras` have the name"):
        gather({"character": lora}, {"character": lora}, {})
    marco = LoraFile(dict(lora.tensors), {"ss_output_name": "marco"})  # the slot's LoRA by its own name
    with pytest.raises(ValueError, match=r"\['marco\.safetensors'\] in `extra_loras` have the name"):
        gather({"character": marco}, {"marco": lora}, {})
    assert sorted(gather({"character": marco}, {"other": lora}, {}).loras) == ["character", "other"]


@pytest.fixture(scope="module")
def base():
    from animation_lora.backends.diffusion import make_base_model

    return make_base_model({"backend": "tiny", "tiny": {"seed": 0}})


def test_an_extra_lora_with_the_wrong_shapes_names_the_file(base):
    from animation_lora.composition.composer import Composer
    from animation_lora.lora_format import module_names

    module = sorted(m for m in module_names(base) if m.startswith("lora_unet_") and "to_q" in m)[0]
    bad = LoraFile(
        {
            f"{module}.lora_down.weight": torch.zeros(4, 7),
            f"{module}.lora_up.weight": torch.zeros(5, 4),
            f"{module}.alpha": torch.tensor(4.0),
        },
        {},
    )
    with pytest.raises(ValueError, match=r"LoRA 'wide\.safetensors \(extra_loras\)' cannot be loaded into"):
        Composer(base, {"wide": bad}, {"wide": "wide.safetensors (extra_loras)"})


def test_an_sdxl_lora_on_sd15_names_the_module(base):
    from animation_lora.composition.loading import check_compatible

    lora = LoraFile({"lora_unet_input_blocks_4_1_proj_in.lora_down.weight": torch.zeros(4, 8)}, {})
    with pytest.raises(
        ValueError,
        match=r"LoRA 'x\.safetensors' does not fit the base model .* module "
        r"'lora_unet_input_blocks_4_1_proj_in' has no counterpart",
    ):
        check_compatible(lora, base, "x.safetensors")


# --- the LaMa trust boundary, the search space, versions --------------------------------------------------
def test_a_lama_file_with_another_hash_is_refused_before_loading(tmp_path):
    from animation_lora.backends.inpainting import LamaInpainter

    path = tmp_path / "big-lama.pt"
    path.write_bytes(b"not torchscript")
    with pytest.raises(
        ValueError,
        match=rf"'{re.escape(str(path))}' has sha256 [0-9a-f]{{64}}, "
        r"not the 00ff in `inpainting\.lama\.sha256`: refused",
    ):
        LamaInpainter.from_path(str(path), sha256="00ff")


@pytest.mark.parametrize(
    "spec, cause",
    [
        ({"type": "float", "high": 1.0}, "float needs low and high"),
        ({"type": "int", "low": 1}, "int needs low and high"),
        ({"type": "categorical"}, "categorical needs choices"),
        ({"type": "float", "low": 2.0, "high": 1.0}, "low 2.0 > high 1.0"),
    ],
)
def test_a_bad_search_dimension_is_named(tmp_path, spec, cause):
    from animation_lora.hpo import run_search

    search = {
        "n_trials": 1,
        "study_name": "s",
        "storage": f"sqlite:///{tmp_path}/o.db",
        "convergence": {"patience": 3, "rel_tol": 0.0},
        "space": {"learning_rate": spec},
    }
    with pytest.raises(ValueError, match=rf"`training\.search\.space\.learning_rate`: {re.escape(cause)}"):
        run_search(lambda p, r: 1.0, search)


def test_a_load_version_that_does_not_exist_names_dataset_and_version(tmp_path):
    from kedro.io import DataCatalog, Version
    from kedro.pipeline import Pipeline
    from kedro_datasets.json import JSONDataset

    from animation_lora.hooks import MissingInputsHook

    catalog = DataCatalog(
        {"frames": JSONDataset(filepath=str(tmp_path / "f.json"), version=Version("2020-01-01", None))}
    )
    with pytest.raises(RuntimeError, match=r"version '2020-01-01' of dataset 'frames' does not exist"):
        MissingInputsHook().before_pipeline_run(
            {"load_versions": {"frames": "2020-01-01"}}, Pipeline([]), catalog
        )


def test_a_failed_runs_versions_never_become_latest(tmp_path, caplog):
    from kedro.io import DataCatalog, Version
    from kedro_datasets.json import JSONDataset

    from animation_lora.hooks import FailedRunVersionsHook

    def catalog(save_version):
        return DataCatalog(
            {"best": JSONDataset(filepath=str(tmp_path / "best.json"), version=Version(None, save_version))}
        )

    catalog("2026-01-01T00.00.00.000Z").save("best", {"run": "completed"})
    failed, hook = catalog("2026-01-02T00.00.00.000Z"), FailedRunVersionsHook()
    hook.after_catalog_created(failed)
    failed.save("best", {"run": "failed"})
    hook.after_dataset_saved("best")
    hook.on_pipeline_error(KeyError("background"))
    assert (tmp_path / "best.json" / "2026-01-02T00.00.00.000Z" / "best.json.failed").exists()
    said = [r.getMessage() for r in caplog.records if "marked failed" in r.getMessage()]
    assert len(said) == 1 and "(KeyError)" in said[0] and said[0].endswith(": best")  # one line, not one each
    assert catalog("2026-01-03T00.00.00.000Z").load("best") == {"run": "completed"}


def test_ctrl_c_during_a_run_keeps_its_versions_out_of_latest(tmp_path):
    """Issue 25, 7: Ctrl-C ended with "Aborted!" and left the aborted run's versions as latest: Kedro tells
    its error hooks about Exceptions only. While a run lasts, SIGINT raises `RunInterrupted`, an Exception."""
    import os
    import signal

    from kedro.io import DataCatalog, Version
    from kedro.pipeline import Pipeline
    from kedro_datasets.json import JSONDataset

    from animation_lora.hooks import FailedRunVersionsHook, RunInterrupted

    def catalog(save_version):
        return DataCatalog(
            {"best": JSONDataset(filepath=str(tmp_path / "best.json"), version=Version(None, save_version))}
        )

    catalog("2026-01-01T00.00.00.000Z").save("best", {"run": "completed"})
    before = signal.getsignal(signal.SIGINT)
    run, hook = catalog("2026-01-02T00.00.00.000Z"), FailedRunVersionsHook()
    hook.after_catalog_created(run)
    hook.before_pipeline_run({}, Pipeline([]), run)
    run.save("best", {"run": "interrupted"})
    hook.after_dataset_saved("best")
    with pytest.raises(RunInterrupted, match="interrupted \\(Ctrl-C\\)") as err:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10**7):  # the handler runs in this (main) thread at the next bytecode
            pass
    hook.on_pipeline_error(err.value)  # what Kedro does with an Exception
    assert catalog("2026-01-03T00.00.00.000Z").load("best") == {"run": "completed"}
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C is Python's own again after the run


def test_the_latent_cache_leaves_no_partial_file(base, tmp_path):
    from animation_lora.training import LatentCache

    cache = LatentCache(base, str(tmp_path))
    cache.get(np.zeros((64, 64, 3), np.uint8))
    files = sorted(p.name for p in (tmp_path / "latents").iterdir())
    assert len(files) == 1 and files[0].endswith(".safetensors")


@pytest.mark.parametrize("error, skipped", [
    (OSError("image file is truncated (3 bytes not processed)"), True),  # a bad image: a skip row
    (PermissionError(13, "Permission denied"), False),  # the machine: the run stops
    (OSError(28, "No space left on device"), False),
    (OSError(5, "Input/output error"), False),
])
def test_only_a_bad_image_is_skipped_not_a_machine_error(error, skipped):
    def fail(image):
        raise error

    if skipped:
        assert map_images({"a": np.zeros((2, 2, 3), np.uint8)}, fail, "test")[1][0]["id"] == "a"
    else:
        with pytest.raises(type(error), match=error.strerror or "x"):
            map_images({"a": np.zeros((2, 2, 3), np.uint8)}, fail, "test")


@pytest.mark.parametrize("name", ["/some/other/folder", "../../x", "..", ".hidden", "a b", "", "x" * 101])
def test_a_name_that_could_escape_its_folder_is_refused_where_it_enters(name):
    """Issue 25, 2: `names.character_0=/some/other/folder` wrote the kohya dataset outside the project."""
    clusters = pd.DataFrame({"cluster": ["character_0", "noise"]})
    with pytest.raises(ValueError, match=r"`names\.character_0`\) is .*: a name becomes a file or folder"):
        apply_names(clusters, {"character_0": name})
    with pytest.raises(ValueError, match=r"The LoRA's name is .*letters, digits"):
        safe_name(name, "The LoRA's name")


def test_a_lora_json_name_and_a_dataset_name_cannot_leave_the_folder(tmp_path):
    from kedro.io import DatasetError

    from animation_lora.datasets.kohya import KohyaDatasetsFolder, read_kohya, write_kohya
    from animation_lora.lora_dataset import build_lora_dataset

    data = build_lora_dataset("marco", "marco", {"i0": np.zeros((64, 64, 3), np.uint8)}, {"i0": "marco"},
                              {"i0": 1.0}, None, {"target_size": 1, "resolution": 64})
    write_kohya(data, tmp_path / "set", tmp_path / "set")
    (tmp_path / "set" / "lora.json").write_text('{"name": "../../models/sd15", "trigger": "marco"}')
    with pytest.raises(ValueError, match=r"The LoRA name in '.*lora\.json' is '\.\./\.\./models/sd15'"):
        read_kohya(tmp_path / "set")
    folder = KohyaDatasetsFolder(str(tmp_path / "many"))
    with pytest.raises(DatasetError, match=r"A LoRA dataset name in .* is '\.\./escaped'"):
        folder.save({"../escaped": data})
    assert not (tmp_path / "escaped").exists()


def test_two_films_of_one_name_never_overwrite_each_others_results(tmp_path):
    from animation_lora.datasets.export import ExportFolder

    ExportFolder(str(tmp_path), "/a/ep01.mp4").save({"report": "<html>a</html>"})
    with pytest.raises(Exception, match=r"holds the results of '/a/ep01.mp4'; '/b/ep01.mkv' has the same"):
        ExportFolder(str(tmp_path), "/b/ep01.mkv").save({"report": "<html>b</html>"})
    assert (tmp_path / "ep01" / "report.html").read_text() == "<html>a</html>"
    ExportFolder(str(tmp_path), "/a/ep01.mp4").save({"report": "<html>a2</html>"})  # the same film: replaced
    assert (tmp_path / "ep01" / "report.html").read_text() == "<html>a2</html>"


def test_a_folder_whose_frames_sit_in_sub_folders_names_them(tmp_path):
    from kedro.io import DatasetError
    from PIL import Image

    from animation_lora.datasets import FilmDataset

    for shot in ("shot_01", "shot_02"):
        (tmp_path / "film" / shot).mkdir(parents=True)
        for k in range(3):
            Image.new("RGB", (64, 48), (k * 60, 90, 120)).save(tmp_path / "film" / shot / f"{k:04d}.png")
    with pytest.raises(DatasetError, match=r"no frames of its own: its images are in sub-folders \(shot_01, "
                                           r"shot_02\)\. Give one of them as `film_path`"):
        FilmDataset(str(tmp_path / "film")).load()
