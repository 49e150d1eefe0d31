import json

import cv2
import numpy as np
import pytest

from latentcast.models.analysis.cluster import (
    agreement, cluster_frames, cluster_vectors, find_scenes, latent_vectors, load_frame_set, pixel_vectors, project,
)
from latentcast.models.codec import load_model
from latentcast.server.cli import main


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def two_clips(clip_dir):
    return load_frame_set([clip_dir / "carphone.mp4", clip_dir / "foreman.264"], every=4, max_frames=12)


def test_cluster_separates_two_clips(model, two_clips):
    report, _, _ = cluster_frames(model, two_clips, k=2)
    assert report.latent_scores["ari"] > 0.9


def test_cluster_chooses_k_within_range(model, two_clips):
    _, clustering, _ = cluster_frames(model, two_clips, k_range=(2, 4))
    assert 2 <= clustering.k <= 4


def test_cluster_reports_pixel_baseline(model, two_clips):
    report, _, _ = cluster_frames(model, two_clips, k=2)
    assert set(report.pixel_scores) == {"ari", "nmi"}


def test_find_scenes_finds_cut_between_clips(model, clip_dir):
    # One video made of 20 consecutive frames of carphone, then 20 of foreman.
    joined = load_frame_set([clip_dir / "carphone.mp4", clip_dir / "foreman.264"], max_frames=20)
    assert find_scenes(latent_vectors(model, joined.frames)) == [(0, 20), (20, 40)]


def test_find_scenes_single_scene_for_constant_vectors():
    assert find_scenes(np.ones((10, 4))) == [(0, 10)]


def test_find_scenes_respects_min_length():
    vectors = np.zeros((10, 2))
    vectors[1:] = 5.0  # a jump after the first frame
    vectors[6:] = 10.0
    assert find_scenes(vectors, min_length=2, threshold=1.0) == [(0, 6), (6, 10)]


def test_find_scenes_empty_input():
    assert find_scenes(np.zeros((0, 3))) == []


def test_cluster_vectors_picks_k_by_silhouette():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10]])
    vectors = np.concatenate([c + rng.normal(size=(20, 2)) for c in centres])
    clustering = cluster_vectors(vectors, k_range=(2, 5))
    assert clustering.k == 3


def test_cluster_vectors_rejects_k_above_frame_count():
    with pytest.raises(ValueError, match="k must be between 1 and the number of frames"):
        cluster_vectors(np.zeros((3, 2)), k=5)


def test_agreement_of_relabelled_clusters_is_perfect():
    scores = agreement(np.array([1, 1, 0, 0]), np.array([0, 0, 1, 1]))
    assert scores["ari"] == pytest.approx(1.0)


def test_pixel_vectors_shape(two_clips):
    assert pixel_vectors(two_clips.frames, side=8).shape == (24, 8 * 8 * 3)


def test_project_tsne_gives_two_columns(model, two_clips):
    points = project(latent_vectors(model, two_clips.frames), "tsne")
    assert points.shape == (24, 2)


def test_cluster_command_on_image_folders(clip_dir, tmp_path, capsys):
    sources = []
    for name in ("carphone.mp4", "bikes.mp4"):
        folder = tmp_path / name.split(".")[0]
        folder.mkdir()
        capture = cv2.VideoCapture(str(clip_dir / name))
        for index in range(8):
            ok, frame = capture.read()
            cv2.imwrite(str(folder / f"{index:03d}.png"), frame)
        capture.release()
        sources.append(str(folder))
    out = tmp_path / "out"
    code = main(["cluster", *sources, "--k", "2", "--out", str(out), "--threads", "1"])
    report = json.loads((out / "report.json").read_text())
    assert code == 0
    assert report["frames"] == 16
    assert (out / "projection.png").is_file()
    assert (out / "clusters" / "cluster_0.png").is_file()
    assert "ARI" in capsys.readouterr().out


def test_cluster_command_single_video_reports_scenes(clip_dir, tmp_path):
    main(["cluster", str(clip_dir / "carphone.mp4"), "--max-frames", "10", "--every", "2", "--k", "2",
          "--out", str(tmp_path)])
    scenes = json.loads((tmp_path / "report.json").read_text())["scenes"]
    assert scenes[0][0] == 0
    # Ten frames kept, one in two: the last kept frame is frame 18 of the video.
    assert scenes[-1][1] == 19


def test_load_frame_set_rejects_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="contains no images"):
        load_frame_set([tmp_path])
