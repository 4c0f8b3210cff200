"""The expression nodes on hand-made inputs: a faceless character is skipped with its reason and counted,
no instances is an error naming the pipeline to run first, the datasets carry the expression trigger and
never a character's name."""

import numpy as np
import pandas as pd
import pytest

from animation_lora.evaluation.expressions import score_expressions
from animation_lora.faces.labelling import ExpressionParams
from animation_lora.params import parse
from animation_lora.pipelines.expression.nodes import build_expression_datasets, crop_faces, label_expressions
from tests.backends.test_expression_backends import rendered_face

BLOCK = {"expressions": ["happy", "surprised"], "classifier": {"backend": "landmarks"},
         "dataset": {"min_images": 2, "target_size": 4, "caption_prefix": "face close-up"}}


def expression_params(**changes) -> ExpressionParams:
    return parse(ExpressionParams, {**BLOCK, **changes}, "expression")


PARAMS = expression_params()


@pytest.fixture(scope="module")
def inputs():
    images, faces = {}, []
    for k in range(4):  # two characters smiling, twice each
        image, box = rendered_face(k % 2, "happy")
        iid = f"f{k:06d}_0"
        images[iid] = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
        faces.append({"instance_id": iid, "face_score": 0.9, "fx0": box[0], "fy0": box[1], "fx1": box[2],
                      "fy1": box[3], "has_face": True, "reason": ""})
    images["f000009_0"] = np.full((120, 60, 4), 128, np.uint8)  # a robot: no face
    faces.append({"instance_id": "f000009_0", "face_score": 0.0, "fx0": np.nan, "fy0": np.nan,
                  "fx1": np.nan, "fy1": np.nan, "has_face": False, "reason": ""})
    face_table = pd.DataFrame(faces)
    ids = list(images)
    index = pd.DataFrame({"instance_id": ids, "track": ["s0_t0", "s0_t1", "s0_t0", "s0_t1", "s0_t2"]})
    clusters = pd.DataFrame({"instance_id": ids, "cluster": ["marco", "nina", "marco", "nina", "robot"]})
    embeddings = pd.DataFrame({"instance_id": ids, "embedding": [np.eye(5)[i] for i in range(5)]})
    return images, face_table, index, clusters, embeddings


def test_faceless_characters_are_skipped_counted_and_the_datasets_name_no_one(inputs):
    images, face_table, index, clusters, embeddings = inputs
    crops = crop_faces(images, face_table, PARAMS)
    assert sorted(crops) == sorted(face_table[face_table.has_face].instance_id)
    table = label_expressions(images, crops, face_table, index, clusters, PARAMS)
    robot = table.set_index("instance_id").loc["f000009_0"]
    assert robot.expression == "" and robot.reason == "no face detected"
    assert (table[table.instance_id != "f000009_0"].expression == "happy").all()
    main, each = build_expression_datasets(crops, table, embeddings, clusters, PARAMS,
                                           {"backend": "template"}, None)
    assert main.name == "happy" and list(each) == ["happy"]  # no surprised face: no surprised dataset
    for caption in main.captions.values():
        assert caption.startswith("happy expression, face close-up")
        assert not {"marco", "nina", "robot"} & set(caption.replace(",", " ").split())
    metrics = score_expressions(table, images, crops, face_table, pd.DataFrame(columns=["instance_id"]),
                                PARAMS, None)
    assert metrics["ground_truth"] is False
    assert metrics["skipped"] == {"no face detected": 1} and metrics["kept"] == {"happy": 4}


def test_a_film_of_faceless_characters_completes_without_an_expression_lora(inputs):
    images, face_table, index, clusters, embeddings = inputs
    robot = ["f000009_0"]
    only = {k: images[k] for k in robot}
    crops = crop_faces(only, face_table[face_table.instance_id.isin(robot)], PARAMS)
    table = label_expressions(only, crops, face_table[face_table.instance_id.isin(robot)],
                              index[index.instance_id.isin(robot)],
                              clusters[clusters.instance_id.isin(robot)], PARAMS)
    main, each = build_expression_datasets(crops, table, embeddings, clusters, PARAMS,
                                           {"backend": "template"}, None)
    assert main.images == {} and each == {} and "no requested expression" in main.skipped


def test_no_instances_names_the_pipeline_to_run_first(inputs):
    _, face_table, *_ = inputs
    with pytest.raises(ValueError, match="run `kedro run --pipelines=preprocessing` first"):
        crop_faces({}, face_table, PARAMS)


def test_an_unknown_expression_lists_the_known_ones(inputs):
    images, face_table, index, clusters, _ = inputs
    with pytest.raises(ValueError, match="does not know \\['smug'\\]; known expressions: happy, surprised"):
        label_expressions(images, {}, face_table, index, clusters, expression_params(expressions=["smug"]))


def test_the_shipped_parameters_parse_and_every_classifier_block_builds():
    import yaml

    from animation_lora.backends.faces import make_expression_classifier
    from animation_lora.faces.labelling import ExpressionParams
    from animation_lora.params import parse
    from tests.conftest import PROJECT_ROOT

    conf = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_expression.yml").read_text())["expression"]
    params = parse(ExpressionParams, conf, "expression")
    for backend in ["landmarks", "fer", "facex"]:
        model = make_expression_classifier({**params.classifier, "backend": backend})
        assert model.name == backend and model.margin == (0.5 if backend == "landmarks" else 0.0)
    with pytest.raises(ValueError, match="`expression.labelling.min_confidance`: unknown key"):
        parse(ExpressionParams, {**conf, "labelling": {"min_confidance": 0.5}}, "expression")


def test_a_second_backend_that_disagrees_leaves_the_face_out(inputs):
    images, face_table, index, clusters, _ = inputs
    crops = crop_faces(images, face_table, PARAMS)
    labelling = {"confirm_with": "facex", "min_confidence": 0.0, "min_margin": 0.0}
    table = label_expressions(images, crops, face_table, index, clusters,
                              expression_params(labelling=labelling))
    facex = table[table.reason.str.startswith("not confirmed: facex says")]
    # the rendered smiles are happy to the geometry; facex sees no smile on them (measured here)
    assert len(facex) == 4 and (facex.label == "happy").all() and (table.expression == "").all()


def test_confirm_with_per_expression_checks_only_the_expressions_named(inputs):
    images, face_table, index, clusters, _ = inputs
    crops = crop_faces(images, face_table, PARAMS)
    base = {"min_confidence": 0.0, "min_margin": 0.0}
    # facex sees no smile on the rendered faces (the test above) but is asked to confirm surprised only
    table = label_expressions(images, crops, face_table, index, clusters,
                              expression_params(labelling={**base, "confirm_with": {"surprised": "facex"}}))
    assert (table[table.instance_id != "f000009_0"].expression == "happy").all()
    table = label_expressions(images, crops, face_table, index, clusters,
                              expression_params(labelling={**base, "confirm_with": {"Happy": "facex"}}))
    assert table.reason.str.startswith("not confirmed: facex says").sum() == 4
    with pytest.raises(ValueError, match=r"`expression.labelling.confirm_with`: \['sad'\] are not requested"):
        label_expressions(images, crops, face_table, index, clusters,
                          expression_params(labelling={**base, "confirm_with": {"sad": "fer"}}))


def test_fer_confirms_happy_in_base_and_both_expressions_in_studio():
    import yaml

    from animation_lora.faces.labelling import ExpressionParams
    from animation_lora.params import parse
    from tests.conftest import PROJECT_ROOT, deep_merge

    base, studio = (yaml.safe_load((PROJECT_ROOT / f"conf/{env}/parameters_expression.yml").read_text())
                    ["expression"] for env in ("base", "studio"))
    requested = ["happy", "surprised"]
    assert parse(ExpressionParams, base, "expression").labelling.confirmers(requested) == {"happy": "fer"}
    merged = parse(ExpressionParams, deep_merge(base, studio), "expression")  # the soft merge of conf/studio
    assert merged.labelling.confirmers(requested) == {"happy": "fer", "surprised": "fer"}
