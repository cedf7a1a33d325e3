"""``actionrec convert`` on files that are not what they claim: each is refused in one line that
names the file (and the tensors at fault) and nothing is written."""

import math

import pytest
import torch

from actionrec.models.resnet import ResNet
from tests.conftest import run


@pytest.fixture(scope="module")
def imagenet_r18():
    """A torchvision-layout ResNet-18 state dict (1000-class head)."""
    torch.manual_seed(0)
    return ResNet(18, num_classes=1000).state_dict()


def convert(capsys, tmp_path, src, *flags):
    out = tmp_path / "out.safetensors"
    code, stdout, err = run(capsys, "convert", src, "--from", "torchvision", "--model", "tsn",
                            "--backbone", "resnet18", "--frames", 1, "--out", out, *flags)
    return code, stdout, err, out


def test_float_weights_convert(capsys, tmp_path, imagenet_r18):
    torch.save(imagenet_r18, tmp_path / "r18.pth")
    code, _, err, out = convert(capsys, tmp_path, tmp_path / "r18.pth")
    assert code == 0 and out.exists(), err


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool])
def test_weights_that_are_not_floats_are_refused_naming_them(capsys, tmp_path, imagenet_r18,
                                                             dtype):
    src = tmp_path / "ints.pth"
    torch.save({k: v.to(dtype) if v.is_floating_point() else v for k, v in imagenet_r18.items()},
               src)
    code, _, err, out = convert(capsys, tmp_path, src)
    name = str(dtype).removeprefix("torch.")
    assert code == 2 and err.count("\n") == 1 and not out.exists(), err
    assert f"{src}: 102 tensors are not floating-point weights: backbone.conv1.weight ({name})" in err
    assert "... (102 in all)" in err  # the first few named, and the count


def test_non_finite_weights_are_refused_naming_them(capsys, tmp_path, imagenet_r18):
    state = {k: v.clone() for k, v in imagenet_r18.items()}
    state["layer2.0.conv1.weight"][0, 0, 0, 0] = math.nan
    state["bn1.running_var"][3] = math.inf
    src = tmp_path / "nan.safetensors"
    from safetensors.torch import save_file

    save_file(state, src)
    code, _, err, out = convert(capsys, tmp_path, src)
    assert code == 2 and err.count("\n") == 1 and not out.exists(), err
    assert (f"{src}: 2 tensors hold NaN or infinite values: backbone.bn1.running_var, "
            "backbone.layer2.0.conv1.weight") in err


@pytest.mark.parametrize("content, what", [
    (b"abc", "it starts with b'abc'"),
    (b"conv1.weight 1 2 3\nfc.bias 4\n", "it starts with b'conv1.we'"),
    (bytes(range(7, 200)), "it starts with b'\\x07\\x08"),
    (b"", "the file is empty"),
])
def test_a_file_that_is_not_a_checkpoint_is_named_so(capsys, tmp_path, content, what):
    src = tmp_path / "weights.pth"
    src.write_bytes(content)
    code, _, err, out = convert(capsys, tmp_path, src)
    assert code == 2 and err.count("\n") == 1 and not out.exists(), err
    assert f"{src}: not a PyTorch checkpoint: neither a zip archive (torch.save) nor a pickle; " \
           f"{what}" in err


def test_a_damaged_archive_is_one_line(capsys, tmp_path, imagenet_r18):
    src = tmp_path / "cut.pth"
    torch.save(imagenet_r18, src)
    src.write_bytes(src.read_bytes()[:5000])
    code, _, err, out = convert(capsys, tmp_path, src)
    assert code == 2 and err.count("\n") == 1 and not out.exists(), err
    assert f"{src}: not a readable PyTorch checkpoint: " in err


def test_a_dict_with_other_keys_than_names_is_refused(capsys, tmp_path):
    src = tmp_path / "ints.pth"
    torch.save({1: torch.zeros(3)}, src)
    code, _, err, _ = convert(capsys, tmp_path, src)
    assert code == 2 and "expected a dict of tensors (a state dict: names to tensors)" in err


@pytest.mark.parametrize("flag", ["--classes", "--frames"])
@pytest.mark.parametrize("value", ["0", "nan", "99999999999"])
def test_numeric_flags_are_in_range(capsys, tmp_path, flag, value):
    with pytest.raises(SystemExit) as e:
        run(capsys, "convert", tmp_path / "x.pth", "--model", "tsn", "--out", tmp_path / "o",
            flag, value)
    assert e.value.code == 2
    assert f"argument {flag}: " in (err := capsys.readouterr().err) and "is not allowed" in err


@pytest.mark.parametrize("out, message", [
    ("out.pth", "expected a .safetensors file name"),
    ("folder.safetensors", "is a folder; expected a .safetensors file name"),
    ("missing/out.safetensors", "the folder {tmp}/missing does not exist"),
])
def test_an_output_that_cannot_be_written_is_refused_before_reading(capsys, tmp_path, out,
                                                                      message):
    (tmp_path / "folder.safetensors").mkdir()
    src = tmp_path / "absent.pth"  # never read: the output is checked first
    code, _, err = run(capsys, "convert", src, "--model", "tsn", "--out", tmp_path / out)
    assert code == 2 and err.count("\n") == 1, err
    assert f"{tmp_path / out}: {message.format(tmp=tmp_path)}" in err
    assert not (tmp_path / "out.pth").exists()


@pytest.mark.parametrize("head", [torch.tensor(1.0), torch.zeros(0, 512)])
def test_a_classifier_that_counts_no_classes_asks_for_them(capsys, tmp_path, imagenet_r18, head):
    src = tmp_path / "head.pth"
    torch.save({**imagenet_r18, "fc.weight": head}, src)
    code, _, err, out = convert(capsys, tmp_path, src)
    assert code == 2 and err.count("\n") == 1 and not out.exists(), err
    assert f"{src}: no classifier found to count the classes" in err


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
@pytest.mark.parametrize("name", ["evil\nkey", "x" * 2000])
def test_a_tensor_name_that_is_not_one_line_is_refused(capsys, tmp_path, imagenet_r18, suffix,
                                                       name):
    from safetensors.torch import save_file

    src = tmp_path / f"names{suffix}"
    state = {**imagenet_r18, name: torch.zeros(1)}
    if suffix == ".pth":
        torch.save(state, src)
    else:
        save_file(state, src)
    code, _, err, out = convert(capsys, tmp_path, src)
    assert code == 2 and err.count("\n") == 1 and len(err) < 500 and not out.exists(), err
    assert f"{src}: the tensor name " in err
