"""Classification metrics against scikit-learn, and the seeded stratified k-fold."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix as sk_confusion, f1_score, precision_score, recall_score

from nlprec.errors import NlprecError
from nlprec.metrics import classification_report, confusion_matrix, mean_std, stratified_kfold


def test_report_matches_scikit_learn_including_a_class_never_predicted():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, 300)
    y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, 3, 300))  # class 3 rarely right
    y_pred[y_pred == 3] = 0
    report = classification_report(y_true, y_pred, ["a", "b", "c", "d"])
    assert report["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert report["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0))
    precision = precision_score(y_true, y_pred, average=None, labels=[0, 1, 2, 3], zero_division=0)
    recall = recall_score(y_true, y_pred, average=None, labels=[0, 1, 2, 3], zero_division=0)
    for i, name in enumerate("abcd"):
        assert report["per_class"][name]["precision"] == pytest.approx(precision[i])
        assert report["per_class"][name]["recall"] == pytest.approx(recall[i])
        assert report["per_class"][name]["support"] == int((y_true == i).sum())
    assert report["confusion_matrix"] == sk_confusion(y_true, y_pred, labels=[0, 1, 2, 3]).tolist()
    assert report["per_class"]["d"]["precision"] == 0.0


def test_confusion_matrix_rejects_mismatched_lengths():
    with pytest.raises(NlprecError, match="3 true labels but 2 predictions"):
        confusion_matrix(np.array([0, 1, 1]), np.array([0, 1]), 2)


def test_stratified_kfold_partitions_seeded_and_balanced():
    labels = np.array([0] * 53 + [1] * 27 + [2] * 20)
    folds = stratified_kfold(labels, 10, seed=0)
    tests = np.concatenate([test for _, test in folds])
    assert sorted(tests.tolist()) == list(range(100))  # every row tested exactly once
    for train, test in folds:
        assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 100
        for label, total in ((0, 53), (1, 27), (2, 20)):
            assert abs((labels[test] == label).sum() - total / 10) <= 1
        assert 9 <= len(test) <= 11
    same = stratified_kfold(labels, 10, seed=0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, same))
    assert not np.array_equal(folds[0][1], stratified_kfold(labels, 10, seed=1)[0][1])
    with pytest.raises(NlprecError, match="--folds"):
        stratified_kfold(labels, 1, 0)


def test_mean_std_is_population_std():
    result = mean_std([0.8, 0.9])
    assert result["mean"] == pytest.approx(0.85) and result["std"] == pytest.approx(0.05)
