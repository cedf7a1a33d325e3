import pytest
import torch

from actionrec.analysis.temporal_order import reorder
from actionrec.cli import main


def numbered_clip(n=2, v=3, t=8):
    """Frame i of every view holds the value i."""
    return torch.arange(t, dtype=torch.float32).view(1, 1, t, 1, 1, 1).expand(n, v, t, 3, 4, 4)


def frame_ids(clip):
    return clip[..., 0, 0, 0].long()


def test_reorders():
    clip = numbered_clip()
    g = torch.Generator().manual_seed(0)
    assert torch.equal(reorder(clip, "in order", g), clip)
    assert frame_ids(reorder(clip, "reversed", g)).tolist()[0][0] == [7, 6, 5, 4, 3, 2, 1, 0]
    assert (frame_ids(reorder(clip, "single frame", g)) == 4).all()
    shuffled = frame_ids(reorder(clip, "shuffled", g))
    assert shuffled.shape == (2, 3, 8)
    assert (shuffled.sort(-1).values == torch.arange(8)).all()  # each view a permutation
    assert len({tuple(view) for view in shuffled.flatten(0, 1).tolist()}) == 6  # one per view
    with pytest.raises(ValueError, match="unknown frame order"):
        reorder(clip, "sideways", g)


def test_diagnose_cli_on_tsn_order_changes_nothing(capsys, trained_tsn):
    config = trained_tsn.parent / "config.yaml"
    assert main(["diagnose", str(config), "--checkpoint", str(trained_tsn), "--json"]) == 0
    import json

    orders = json.loads(capsys.readouterr().out)["orders"]
    assert set(orders) == {"in order", "reversed", "shuffled", "single frame"}
    for order in ("reversed", "shuffled"):  # TSN averages per-frame scores
        assert orders[order] == pytest.approx(orders["in order"])
    assert main(["diagnose", str(config), "--checkpoint", str(trained_tsn)]) == 0
    out = capsys.readouterr().out
    assert "frames        top-1 %  drop  reversal-pair %  drop" in out
    assert "\nreversed  " in out and "0.0  " in out.split("\nreversed")[1].splitlines()[0]
