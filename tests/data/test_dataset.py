"""Dataset: listing real folders and CSVs, the sequence protocol, splits and their records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import littlevision.data as data_pkg
from littlevision.data import Dataset, Item, LoadReport, load_image
from littlevision.data import dataset as dataset_mod
from littlevision.data import decode as decode_mod
from littlevision.data import demo as demo_mod
from littlevision.errors import UserError

# -- from_folder ---------------------------------------------------------------------------------


def test_tutorial_layout_of_the_sample_photos(cats_dogs_dir):
    ds = Dataset.from_folder(cats_dogs_dir)
    assert ds.classes == ["cats", "dogs"]
    assert len(ds) == 72 and ds.counts() == {"cats": 36, "dogs": 36}
    assert ds.where(subset="train").counts() == {"cats": 30, "dogs": 30}
    assert ds.where(subset="validation").counts() == {"cats": 6, "dogs": 6}
    train, val = ds.split(val_fraction=0.5, seed=7)  # the folder's split wins over the fraction
    assert (len(train), len(val)) == (60, 12)
    assert {p.parent.parent.name for p in val.paths} == {"validation"}
    assert not ds.load_report
    assert repr(ds) == (
        "Dataset(72 images, 2 classes: cats 36, dogs 36 (train 60, validation 12)"
        f" from {str(cats_dogs_dir)!r})"
    )


def test_tutorial_layout_of_real_cats_vs_dogs(real_cats_dogs_dir):
    cats_dogs_dir = real_cats_dogs_dir
    ds = Dataset.from_folder(cats_dogs_dir)
    assert ds.classes == ["cats", "dogs"]
    assert len(ds) == 2800 and ds.counts() == {"cats": 1400, "dogs": 1400}
    assert ds.where(subset="train").counts() == {"cats": 1000, "dogs": 1000}
    assert ds.where(subset="validation").counts() == {"cats": 400, "dogs": 400}
    train, val = ds.split(val_fraction=0.5, seed=7)  # the folder's split wins over the fraction
    assert (len(train), len(val)) == (2000, 800)
    assert {p.parent.parent.name for p in val.paths} == {"validation"}
    assert not ds.load_report
    assert repr(ds) == (
        "Dataset(2800 images, 2 classes: cats 1400, dogs 1400 (train 2000, validation 800)"
        f" from {str(cats_dogs_dir)!r})"
    )


def test_class_folders_hidden_files_non_images_and_empty_classes(small_folder, tmp_path):
    root = shutil.copytree(small_folder, tmp_path / "pets")
    (root / "cats" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (root / "cats" / ".DS_Store").write_bytes(b"x")
    (root / "cats" / "more" / "deeper").mkdir(parents=True)
    shutil.copy(root / "cats" / "cat.1.jpg", root / "cats" / "more" / "deeper" / "c.jpg")
    (root / "cats" / ".hidden").mkdir()
    (root / "cats" / ".hidden" / "x.jpg").write_bytes(b"x")
    (root / "birds").mkdir()  # an empty class still counts: the doctor will flag it
    (root / ".git").mkdir()
    (root / "README.txt").write_text("my photos")
    ds = Dataset.from_folder(root)
    assert ds.classes == ["birds", "cats", "dogs"]
    assert ds.counts() == {"birds": 0, "cats": 22, "dogs": 20}
    names = {p.name for p in ds.paths}
    assert "Thumbs.db" in names and "c.jpg" in names
    assert ".DS_Store" not in names and "x.jpg" not in names
    assert set(ds.subsets) == {None}
    assert ds.load_report.ignored == [root / "README.txt"]
    assert "README.txt" in ds.load_report.summary()
    # sorted by name within a folder, a folder's own files before its subfolders'
    assert ds.relative(ds.paths[0]) == Path("cats/Thumbs.db")
    assert ds.relative(ds.paths[1]) == Path("cats/cat.1.jpg")
    assert ds.relative(ds.paths[21]) == Path("cats/more/deeper/c.jpg")
    assert Dataset.from_folder(root) == ds


def test_val_folder_counts_as_validation(small_folder, tmp_path):
    root = tmp_path / "tut"
    shutil.copytree(small_folder, root / "train")
    shutil.copytree(small_folder, root / "val")
    (root / "test").mkdir()
    ds = Dataset.from_folder(root)
    assert ds.where(subset="validation").counts() == {"cats": 20, "dogs": 20}
    assert ds.load_report.ignored == [root / "test"]


def test_from_folder_errors_echo_the_path(tmp_path, small_folder):
    with pytest.raises(UserError, match="No such folder: '.*nowhere'"):
        Dataset.from_folder(tmp_path / "nowhere")
    afile = tmp_path / "a.jpg"
    afile.write_bytes(b"x")
    with pytest.raises(UserError, match="a.jpg' is a file, not a folder"):
        Dataset.from_folder(afile)
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(small_folder / "cats" / "cat.1.jpg", flat)
    with pytest.raises(UserError, match="No class subfolders in '.*flat'.*found 1 files"):
        Dataset.from_folder(flat)
    both = tmp_path / "both"
    for sub in ("train/a", "validation/a", "val/a"):
        (both / sub).mkdir(parents=True)
    with pytest.raises(UserError, match="both validation/ and val/"):
        Dataset.from_folder(both)


# -- from_csv ------------------------------------------------------------------------------------


def test_real_cat_breeds_csv(cat_breeds_dir):
    ds = Dataset.from_csv(cat_breeds_dir / "labels.csv", cat_breeds_dir / "images")
    assert len(ds) == 1000 and len(ds.classes) == 5
    assert set(ds.counts().values()) == {200}
    report = ds.load_report
    assert len(report.missing_rows) == 10000 and not report.unlabelled_files
    assert report.summary().startswith("10000 rows of labels.csv name a file that is not there")
    odd = {p.name for p in ds.paths if p.suffix != ".jpg"}
    assert {"Cat1018.png", "Cat1035.png", "Cat1021.jpeg"} <= odd
    webp_named_png = ds.paths[[p.name for p in ds.paths].index("Cat1035.png")]
    assert load_image(webp_named_png, 32).shape == (32, 32, 3)
    assert "5 classes: Abyssinian 200" in repr(ds)


def _images(small_folder: Path, dest: Path, n: int = 4) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    files = sorted((small_folder / "cats").iterdir())[:n]
    return [Path(shutil.copy(f, dest / f.name)) for f in files]


def test_csv_matching_reports_everything_it_leaves_out(small_folder, tmp_path):
    imgs = _images(small_folder, tmp_path / "imgs", 6)  # cat.1, cat.10, cat.11, cat.12, ...
    (tmp_path / "imgs" / "Thumbs.db").write_bytes(b"x")
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "filename,notes,label\n"
        f"{imgs[0].name.upper()},,tabby\n"  # case-insensitive
        f"{imgs[1].stem},,tabby\n"  # no extension
        f"{imgs[2].stem}.png,,black\n"  # wrong extension
        f"{imgs[2].name},,black\n"  # the same file again: duplicate
        f"{imgs[3].name},,\n"  # empty label
        f"{imgs[4].name},,tabby\n"
        f"{imgs[4].name},,black\n"  # conflicting label
        "gone.jpg,,tabby\n"
    )
    ds = Dataset.from_csv(csv, tmp_path / "imgs")
    assert [p.name for p in ds.paths] == [imgs[0].name, imgs[1].name, imgs[2].name]
    assert ds.labels == ["tabby", "tabby", "black"] and ds.classes == ["black", "tabby"]
    r = ds.load_report
    assert r.missing_rows == ["gone.jpg"]
    assert r.duplicate_rows == [imgs[2].name] and r.conflicting_rows == [imgs[4].name]
    assert r.empty_labels == [imgs[3].name]
    assert {p.name for p in r.unlabelled_files} == {
        imgs[3].name,
        imgs[4].name,
        imgs[5].name,
        "Thumbs.db",
    }
    text = r.summary()
    assert "1 rows of labels.csv name a file that is not there (e.g. gone.jpg)" in text
    assert "4 files have no label" in text


def test_csv_with_subpaths_semicolons_and_explicit_columns(small_folder, tmp_path):
    imgs = _images(small_folder, tmp_path / "root" / "images" / "batch1", 2)
    csv = tmp_path / "root" / "meta.csv"
    csv.write_text(
        "\ufeffwho;img_ref;kind\n"  # BOM, semicolons, names no guess would pick
        f"a;images/batch1/{imgs[0].name};x\n"
        f"b;.\\images\\batch1\\{imgs[1].name};y\n"
    )
    with pytest.raises(UserError, match="columns: who, img_ref, kind"):
        Dataset.from_csv(csv, tmp_path / "root")
    ds = Dataset.from_csv(csv, tmp_path / "root", id_col="img_ref", label_col="kind")
    assert ds.paths == imgs and ds.labels == ["x", "y"]
    # ids written relative to the folder's parent ('images/...') also work from inside it
    ds2 = Dataset.from_csv(csv, tmp_path / "root" / "images", id_col="img_ref", label_col="kind")
    assert ds2.paths == imgs


def test_two_column_csv_is_id_then_label(small_folder, tmp_path):
    imgs = _images(small_folder, tmp_path / "imgs", 2)
    csv = tmp_path / "l.csv"
    csv.write_text(f"a,b\n{imgs[0].name},one\n{imgs[1].name},two\n")
    assert Dataset.from_csv(csv, tmp_path / "imgs").labels == ["one", "two"]


def test_csv_errors(tmp_path, small_folder):
    _images(small_folder, tmp_path / "imgs", 1)
    with pytest.raises(UserError, match="labels file '.*missing.csv' does not exist"):
        Dataset.from_csv(tmp_path / "missing.csv", tmp_path / "imgs")
    csv = tmp_path / "only_ids.csv"
    csv.write_text("filename\ncat.1.jpg\n")
    with pytest.raises(UserError, match="holds the labels \\(columns: filename\\)"):
        Dataset.from_csv(csv, tmp_path / "imgs")
    with pytest.raises(UserError, match="No such images folder"):
        Dataset.from_csv(csv, tmp_path / "nope")
    with pytest.raises(UserError, match="has no column 'breed'"):
        Dataset.from_csv(csv, tmp_path / "imgs", label_col="breed")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(UserError, match="is empty"):
        Dataset.from_csv(empty, tmp_path / "imgs")
    many = tmp_path / "many.csv"
    many.write_text("file,id,label\n")
    with pytest.raises(UserError, match="image file names"):
        Dataset.from_csv(many, tmp_path / "imgs")


# -- the sequence protocol -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pets(small_folder) -> Dataset:
    return Dataset.from_folder(small_folder)


def test_len_iter_and_int_index(pets):
    assert len(pets) == 40 and list(pets)[0] == pets[0] == pets[np.int64(0)]
    assert isinstance(pets[-1], Item) and pets[-1].label == "dogs"
    with pytest.raises(IndexError):
        pets[40]
    assert pets[3] in pets and pets.index(pets[3]) == 3


@pytest.mark.parametrize(
    "key",
    [
        slice(5, 25, 2),
        [0, 39, 3, 3],
        np.array([1, -1, 2]),
        np.arange(40) % 3 == 0,
        [True] * 20 + [False] * 20,
        [],
    ],
)
def test_slices_lists_arrays_and_masks_give_datasets_with_the_same_classes(pets, key):
    sub = pets[key]
    assert isinstance(sub, Dataset) and sub.classes == pets.classes
    expected = np.arange(40)[key] if not isinstance(key, list) or key else []
    assert sub.paths == [pets.paths[i] for i in np.asarray(expected, dtype=int)]
    assert sub.root == pets.root and sub.source == pets.source


def test_y_counts_and_class_indices_stay_stable(pets):
    dogs = pets[pets.y == 1]
    assert dogs.counts() == {"cats": 0, "dogs": 20}
    assert (dogs.y == 1).all() and dogs.y.dtype == np.int64
    assert pets.classes is not pets.classes  # a copy: mutating it changes nothing


def test_bad_keys(pets):
    with pytest.raises(TypeError):
        pets["cats"]
    with pytest.raises(TypeError):
        pets[np.array([0.5])]
    with pytest.raises(IndexError, match="length 40"):
        pets[np.ones(3, dtype=bool)]
    with pytest.raises(IndexError):
        pets[[0, 99]]


def test_where_filter_add_eq_hash(pets):
    cats = pets.where(label="cats")
    assert cats.counts() == {"cats": 20, "dogs": 0}
    assert pets.filter(lambda it: it.label == "cats") == cats
    both = cats + pets.where(label=["dogs"])
    assert both == pets and hash(both) == hash(pets)
    assert pets[:3] != pets[:4] and pets != "pets"
    with pytest.raises(UserError, match="Unknown class 'cat': the classes are cats, dogs"):
        pets.where(label="cat")
    with pytest.raises(UserError, match="Unknown subset 'test'"):
        pets.where(subset="test")


def test_add_of_different_classes_is_the_union():
    a = Dataset([Item(Path("a/1.jpg"), "a")])
    b = Dataset([Item(Path("b/1.jpg"), "b")], root="b")
    assert (a + b).classes == ["a", "b"] and (a + b).root is None


def test_constructor_validates_labels_against_classes():
    with pytest.raises(ValueError, match="classes=\\['a'\\]"):
        Dataset([Item(Path("x.jpg"), "b")], classes=["a"])
    with pytest.raises(ValueError, match="distinct"):
        Dataset([], classes=["a", "a"])
    unlabelled = Dataset([Item(Path("x.jpg"))], classes=["a"])
    assert unlabelled.y.tolist() == [-1] and "1 unlabelled" in repr(unlabelled)


def test_repr_truncates_many_classes():
    items = [Item(Path(f"{c}/{i}.jpg"), f"class{c:02d}") for c in range(12) for i in range(2)]
    text = repr(Dataset(items))
    assert text.startswith("Dataset(24 images, 12 classes: class00 2, class01 2")
    assert "... and 7 more" in text
    assert repr(Dataset([])) == "Dataset(0 images, 0 classes)"


# -- split and its record ------------------------------------------------------------------------


def _toy(counts: dict[str, int]) -> Dataset:
    return Dataset(
        [Item(Path(f"/data/{c}/{i}.jpg"), c) for c, n in counts.items() for i in range(n)],
        root="/data",
        source="toy",
    )


def test_split_is_stratified_seeded_and_keeps_order():
    ds = _toy({"a": 50, "b": 20, "c": 2, "d": 1})
    train, val = ds.split(val_fraction=0.2, seed=3)
    assert val.counts() == {"a": 10, "b": 4, "c": 1, "d": 0}  # a lone image goes to train
    assert train.counts() == {"a": 40, "b": 16, "c": 1, "d": 1}
    assert set(train.paths).isdisjoint(val.paths) and len(train) + len(val) == len(ds)
    assert train.paths == [p for p in ds.paths if p in set(train.paths)]
    assert set(train.subsets) == {"train"} and set(val.subsets) == {"validation"}
    again = ds.split(val_fraction=0.2, seed=3)
    assert again == (train, val)
    assert ds.split(val_fraction=0.2, seed=4)[1] != val


def test_split_errors():
    with pytest.raises(ValueError, match="val_fraction"):
        _toy({"a": 5}).split(val_fraction=1.0)
    with pytest.raises(UserError, match="1 of 2 images have no label"):
        Dataset([Item(Path("a.jpg"), "a"), Item(Path("b.jpg"))]).split()


def test_split_record_round_trips_through_json(small_folder, tmp_path):
    ds = Dataset.from_folder(small_folder)
    train, val = ds.split(val_fraction=0.25, seed=1)
    record = json.loads(json.dumps((train + val).split_record()))
    assert record["classes"] == ["cats", "dogs"]
    assert record["subsets"]["validation"]["cats"][0].startswith("cats/cat.")
    moved = shutil.copytree(small_folder, tmp_path / "moved")
    back = Dataset.from_split_record(record, moved)
    train2, val2 = back.split()
    assert [ds.relative(p) for p in val.paths] == [back.relative(p) for p in val2.paths]
    assert len(train2) == len(train) and not back.load_report
    (moved / val2.relative(val2.paths[0])).unlink()
    assert len(Dataset.from_split_record(record, moved).load_report.missing_rows) == 1


def test_split_record_errors(small_folder):
    ds = Dataset.from_folder(small_folder)
    with pytest.raises(ValueError, match="split first"):
        ds.split_record()
    with pytest.raises(ValueError, match="root folder"):
        Dataset([Item(Path("a.jpg"), "a", "train")]).split_record()
    with pytest.raises(UserError, match="Expected a split record"):
        Dataset.from_split_record({"train": []}, small_folder)


def test_relative_outside_root_is_unchanged(pets):
    assert pets.relative("/elsewhere/x.jpg") == Path("/elsewhere/x.jpg")


def test_load_report_summary_when_clean():
    assert LoadReport().summary() == "nothing was left out" and not LoadReport()


# -- the package's public surface ----------------------------------------------------------------


def test_package_all_is_complete_and_resolves():
    exported = set(data_pkg.__all__)
    for module in (dataset_mod, decode_mod, demo_mod):
        assert set(module.__all__) <= exported, module.__name__
    for name in data_pkg.__all__:
        assert getattr(data_pkg, name) is not None
