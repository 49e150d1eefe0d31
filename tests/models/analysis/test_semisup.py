import json

import numpy as np
import pytest
import torch
from torch import nn

from latentcast.models.analysis.semisup import (
    METHODS, LabelledData, SemisupConfig, accuracy, draw_labelled, fit_early_stopping, load_digits_data,
    load_frames_data, semisup_experiment, write_outputs,
)
from latentcast.server.cli import main

TINY = SemisupConfig(labels_per_class=[1, 5], seeds=2, pretrain_steps=20, pretrain_batch=32, head_iterations=20,
                     finetune_iterations=5)


def _subset(data: LabelledData, train: int, test: int) -> LabelledData:
    return LabelledData(data.name, data.images, data.labels, data.classes, data.train[:train], data.val,
                        data.test[:test])


@pytest.fixture(scope="module")
def digits() -> LabelledData:
    return _subset(load_digits_data(), train=400, test=200)


def test_semisup_scores_every_method_and_seed(digits):
    result = semisup_experiment(digits, TINY)
    runs = {(s.method, s.labels_per_class, s.seed) for s in result.scores}
    assert runs == {(m, n, seed) for m in METHODS for n in (1, 5) for seed in (0, 1)}


def test_semisup_accuracies_are_fractions(digits):
    result = semisup_experiment(digits, TINY)
    assert all(0.0 <= s.accuracy <= 1.0 for s in result.scores)


def test_semisup_writes_table_and_plot(digits, tmp_path):
    paths = write_outputs([semisup_experiment(digits, TINY)], tmp_path)
    rows = json.loads(paths["json"].read_text())
    assert [row["labels_per_class"] for row in rows] == [1, 5]
    assert paths["plot"].stat().st_size > 0


def test_digits_split_is_disjoint():
    data = load_digits_data()
    assert not set(data.train) & set(data.test)
    assert not set(data.val) & set(data.test)


def test_frames_split_puts_test_after_train(clip_dir):
    data = load_frames_data([clip_dir / "carphone.mp4", clip_dir / "foreman.264"], max_frames=20)
    for label in (0, 1):
        assert data.train[data.labels[data.train] == label].max() < data.test[data.labels[data.test] == label].min()
    assert tuple(data.images.shape[1:]) == (3, 64, 64)


def test_frames_experiment_runs(clip_dir):
    data = load_frames_data([clip_dir / "carphone.mp4", clip_dir / "foreman.264"], max_frames=20)
    config = SemisupConfig(labels_per_class=[1], seeds=1, pretrain_steps=3, pretrain_batch=8, head_iterations=5,
                           finetune_iterations=2)
    assert len(semisup_experiment(data, config).scores) == 3


def test_load_frames_rejects_single_video(clip_dir):
    with pytest.raises(ValueError, match="at least 2 videos"):
        load_frames_data([clip_dir / "carphone.mp4"])


def test_draw_labelled_rejects_too_few_images():
    labels = np.array([0, 0, 1])
    with pytest.raises(ValueError, match="class 1 has 1 training images"):
        draw_labelled(labels, np.arange(3), 2, seed=0)


def test_draw_labelled_takes_per_class():
    labels = np.array([0, 0, 0, 1, 1, 1])
    chosen = draw_labelled(labels, np.arange(6), 2, seed=0)
    assert sorted(labels[chosen].tolist()) == [0, 0, 1, 1]


def test_early_stopping_never_ends_worse_on_validation():
    torch.manual_seed(0)
    x = torch.randn(20, 4)
    y = (x[:, 0] > 0).long()
    model = nn.Linear(4, 2)
    # Training on flipped labels lowers validation accuracy, so the starting weights must be kept.
    start = accuracy(model, x, y)
    config = SemisupConfig(eval_every=1)
    fit_early_stopping(model, model.parameters(), x, 1 - y, x, y, 10, 10.0, config)
    assert accuracy(model, x, y) >= start


def test_semisup_command_requires_videos_for_frames(tmp_path):
    with pytest.raises(ValueError, match="needs --videos"):
        main(["semisup", "--datasets", "frames", "--out", str(tmp_path)])
