import pytest
import torch
import torch.nn as nn

from core.models import Net
from core.optim import SGD


@pytest.mark.parametrize("momentum,weight_decay,nesterov", [(0.9, 0.0, False), (0.0, 0.0, False), (0.9, 5e-4, False),
                                                            (0.9, 5e-4, True), (0.85, 0.0, True)])
def test_same_updates_and_state_as_torch_sgd(momentum, weight_decay, nesterov):
    torch.manual_seed(0)
    x, y = torch.randn(40, 3, 32, 32), torch.randint(0, 10, (40,))
    models = []
    for cls in (torch.optim.SGD, SGD):
        torch.manual_seed(1)
        model = Net()
        optimizer = cls(model.parameters(), lr=0.01, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        for i in range(10):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[i * 4:(i + 1) * 4]), y[i * 4:(i + 1) * 4]).backward()
            optimizer.step()
        models.append((model, optimizer))
    (a, oa), (b, ob) = models
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))  # bit for bit
    sa, sb = oa.state_dict(), ob.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for k in sa["state"]:
        assert sa["state"][k].keys() == sb["state"][k].keys()
        for name in sa["state"][k]:
            assert torch.equal(sa["state"][k][name], sb["state"][k][name])


def test_state_dict_moves_between_the_two_classes():
    model = Net()
    ours = SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    ours.step()
    stock = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    stock.load_state_dict(ours.state_dict())
    assert torch.equal(stock.state[model.conv1.weight]["momentum_buffer"],
                       ours.state[model.conv1.weight]["momentum_buffer"])
