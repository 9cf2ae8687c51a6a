"""Mult-VAE / Mult-DAE user encoder (Liang et al., 2018) in PyTorch.

"Variational Autoencoders for Collaborative Filtering", WWW 2018: a user's
item vector goes through dropout and an MLP encoder to a latent code
(Gaussian posterior for the VAE, a point for the DAE); an MLP decoder
predicts a multinomial distribution over items. The training loss is the
multinomial log-likelihood of the user's items plus ``beta`` times the KL
divergence (``beta`` annealed from 0). The user embedding is the posterior
mean. PyTorch is imported only when the encoder is used.
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state

from cohortrec._errors import check_fitted
from cohortrec.encoders._base import as_matrix, check_n_items

__all__ = ["InteractionEncoder"]

_PARAMS = ("n_components", "model", "hidden", "dropout", "beta", "anneal_steps", "epochs", "batch_size",
           "lr", "weight_decay", "holdout", "patience", "input", "n_threads", "max_train_users", "output_items")


def _torch():
    try:
        import torch  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "InteractionEncoder needs PyTorch: pip install torch==2.13.0 safetensors "
            "(or the cohortrec[torch] extra)"
        ) from exc
    return torch


def _resolve_device(device: str):
    torch = _torch()
    if device not in ("auto", "cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        from cohortrec.ops import DeviceUnavailableError  # noqa: PLC0415

        raise DeviceUnavailableError("device='cuda' was requested for InteractionEncoder, but torch sees no GPU")
    return torch.device(device)


def _build(n_items: int, hidden: Sequence[int], latent: int, variational: bool, n_outputs: int | None = None):
    """The network: encoder over all ``n_items`` inputs, decoder over ``n_outputs`` (default all items)."""
    torch = _torch()
    n_out = n_items if n_outputs is None else int(n_outputs)
    nn = torch.nn

    class MultVAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            dims = [n_items, *hidden]
            self.enc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
            self.head = nn.Linear(dims[-1], 2 * latent if variational else latent)
            rdims = [latent, *reversed(hidden), n_out]
            self.dec = nn.ModuleList(nn.Linear(a, b) for a, b in zip(rdims[:-1], rdims[1:]))
            for m in [*self.enc, self.head, *self.dec]:
                nn.init.xavier_uniform_(m.weight)
                nn.init.normal_(m.bias, std=0.001)

        def encode(self, batch, dropout: float, w_first=None):
            """``batch`` = (rows, cols, values, n_rows) of a sparse user x item block.

            ``w_first``: the first layer's weight restricted to some columns (items), with
            ``cols`` indexing them (the training path that updates only the batch's items).
            """
            r, c, v, b = batch
            norm = torch.zeros(b, dtype=v.dtype, device=v.device).index_add_(0, r, v * v).sqrt()
            v = v / norm.clamp_min(1e-12)[r]
            v = torch.nn.functional.dropout(v, p=dropout, training=dropout > 0)
            first = self.enc[0] if len(self.enc) else self.head
            W = first.weight if w_first is None else w_first
            xs = torch.sparse_coo_tensor(torch.stack([r, c]), v, (b, W.shape[1]), check_invariants=False)
            x = torch.sparse.mm(xs, W.t()) + first.bias
            if len(self.enc):
                x = torch.tanh(x)
                for lin in self.enc[1:]:
                    x = torch.tanh(lin(x))
                h = self.head(x)
            else:
                h = x
            if variational:
                return h[:, :latent], h[:, latent:]
            return h, None

        def decode(self, z):
            for i, lin in enumerate(self.dec):
                z = lin(z)
                if i < len(self.dec) - 1:
                    z = torch.tanh(z)
            return z

    return MultVAE()


class _LazyColumnAdam:
    """Adam on the columns (items) of the first layer's weight that a batch touches.

    The input layer has one column per item; dense Adam would read and write
    all ``hidden x n_items`` weights and moments at every step, which at
    100,000 items costs several times the rest of the step. As in
    ``torch.optim.SparseAdam`` (and TensorFlow's LazyAdam), only the columns
    of the batch's items are updated, each with its own step count for the
    bias correction; untouched columns keep their moments. ``take`` gathers
    the batch's columns into a leaf tensor ``block`` that the forward pass
    uses; ``step`` applies Adam to them and writes them back.
    """

    def __init__(self, weight, lr: float, weight_decay: float = 0.0, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
        torch = _torch()
        self.weight = weight
        self.lr, self.wd, self.b1, self.b2, self.eps = lr, weight_decay, betas[0], betas[1], eps
        self.m = torch.zeros_like(weight)
        self.v = torch.zeros_like(weight)
        self.t = torch.zeros(weight.shape[1], dtype=weight.dtype, device=weight.device)
        self.cols = self.inverse = self.block = None

    def take(self, cols) -> None:
        torch = _torch()
        self.cols, self.inverse = torch.unique(cols, return_inverse=True)
        self.block = self.weight.detach()[:, self.cols].clone().requires_grad_(True)

    def step(self) -> None:
        torch = _torch()
        g = self.block.grad
        if g is None:
            return
        with torch.no_grad():
            cols, w = self.cols, self.block.detach()
            if self.wd:
                g = g + self.wd * w
            t = self.t[cols] + 1.0
            self.t[cols] = t
            m = self.m[:, cols].mul_(self.b1).add_(g, alpha=1.0 - self.b1)
            v = self.v[:, cols].mul_(self.b2).addcmul_(g, g, value=1.0 - self.b2)
            self.m[:, cols] = m
            self.v[:, cols] = v
            mhat = m / (1.0 - self.b1 ** t)
            vhat = v / (1.0 - self.b2 ** t)
            self.weight[:, cols] = w - self.lr * mhat / (vhat.sqrt() + self.eps)
        self.block = None


class InteractionEncoder(TransformerMixin, BaseEstimator):
    """User embeddings from interactions with a Mult-VAE or Mult-DAE.

    Parameters
    ----------
    n_components : int, default 64
        Latent dimension (embedding size).
    model : {"vae", "dae"}, default "vae"
    hidden : sequence of int, default (256,)
        Hidden layer sizes of the encoder (mirrored in the decoder).
    dropout : float, default 0.5
        Input dropout during training (the denoising).
    beta : float, default 0.2
        Final weight of the KL term (VAE), reached linearly after
        ``anneal_steps`` mini-batches.
    anneal_steps : int, default 2000
    epochs : int, default 50
        Maximum passes over the training users.
    batch_size : int, default 256
    lr : float, default 1e-3
        Adam learning rate.
    weight_decay : float, default 0.0
    holdout : float, default 0.1
        Share of users held out for early stopping (0 disables it).
    patience : int, default 5
        Epochs without improvement of the held-out loss before stopping; the
        best weights are kept.
    input : {"binary", "log1p", "raw"}, default "binary"
        Transform of the matrix values fed to the model.
    device : {"auto", "cpu", "cuda"}, default "auto"
    n_threads : int, optional
        CPU threads for torch during fit/transform (default: torch's
        setting). On a machine shared with other jobs, 1 can be several
        times faster than spinning threads.
    max_train_users : int or None, default 50000
        Train on at most this many users, an activity-stratified sample
        (users ordered by their number of items, then every
        ``n / max_train_users``-th taken from a random start), so that the
        training cost is bounded whatever the number of users; every user
        is then embedded by fold-in (:meth:`transform`, batched). ``None``
        trains on all users. On planted-group shops of 100,000 users a
        50,000-user sample gives groups as good as training on everyone
        (``benchmarks/results/scale-*.md``).
    output_items : int or None, default 4096
        The decoder predicts the ``output_items`` most popular items of the
        training users one by one and all other items as one "tail" output
        (their summed probability), so that the cost of a training row does
        not grow with the catalogue (the softmax over every item is the
        O(users x items) part of a Mult-VAE). The encoder still reads every
        item. ``None`` (or a catalogue no larger) predicts every item, the
        original Mult-VAE.
    random_state : int, RandomState or None
    verbose : bool, default True
        Progress of training and fold-in on stderr: a tqdm bar on a
        terminal, else a plain line every 10 s (batches done, rate, time
        left) for runs that last that long.

    Attributes
    ----------
    n_items_ : int
    history_ : list of dict
        Per epoch: training loss, held-out loss.
    best_epoch_ : int
    model_ : torch.nn.Module
    training_summary_ : dict
        What the model was trained on: ``n_users`` (given), ``n_train_users``
        (the sample), ``sampling``, ``n_outputs`` (decoder outputs, tail
        included) and ``tail_share`` (share of the training interactions
        that fell in the tail output).

    Examples
    --------
    >>> from cohortrec.datasets import make_shop
    >>> from cohortrec.encoders import InteractionEncoder
    >>> X, y = make_shop(500, 200, 4, seed=0)
    >>> Z = InteractionEncoder(16, epochs=2, verbose=False, random_state=0).fit_transform(X)
    >>> Z.shape
    (500, 16)
    """

    def __init__(
        self,
        n_components: int = 64,
        *,
        model: str = "vae",
        hidden: Sequence[int] = (256,),
        dropout: float = 0.5,
        beta: float = 0.2,
        anneal_steps: int = 2000,
        epochs: int = 50,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        holdout: float = 0.1,
        patience: int = 5,
        input: str = "binary",
        device: str = "auto",
        n_threads: int | None = None,
        max_train_users: int | None = 50_000,
        output_items: int | None = 4096,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = True,
    ) -> None:
        self.n_components = n_components
        self.model = model
        self.hidden = hidden
        self.dropout = dropout
        self.beta = beta
        self.anneal_steps = anneal_steps
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.holdout = holdout
        self.patience = patience
        self.input = input
        self.device = device
        self.n_threads = n_threads
        self.max_train_users = max_train_users
        self.output_items = output_items
        self.random_state = random_state
        self.verbose = verbose

    # ---------------------------------------------------------------- helpers
    def _check_params(self) -> None:
        if self.model not in ("vae", "dae"):
            raise ValueError(f"model must be 'vae' or 'dae', got {self.model!r}")
        for name in ("n_components", "epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if not 0 <= float(self.dropout) < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout!r}")
        if not 0 <= float(self.holdout) < 1:
            raise ValueError(f"holdout must lie in [0, 1), got {self.holdout!r}")
        if self.input not in ("binary", "log1p", "raw"):
            raise ValueError(f"input must be 'binary', 'log1p' or 'raw', got {self.input!r}")
        if any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"hidden sizes must be >= 1, got {self.hidden!r}")
        for name, lo in (("max_train_users", 2), ("output_items", 1)):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo):
                raise ValueError(f"{name} must be None or an integer >= {lo}, got {v!r}")

    def _training_rows(self, M: sp.csr_matrix, rs: np.random.RandomState) -> np.ndarray | None:
        """An activity-stratified sample of ``max_train_users`` rows (None = all rows)."""
        n = M.shape[0]
        cap = self.max_train_users
        if cap is None or n <= int(cap):
            return None
        activity = np.diff(M.indptr)
        order = np.lexsort((rs.random_sample(n), activity))  # by activity, ties in random order
        step = n / int(cap)
        picks = (rs.random_sample() * step + step * np.arange(int(cap))).astype(np.int64)
        return np.sort(order[np.minimum(picks, n - 1)])

    def _output_map(self, M: sp.csr_matrix) -> np.ndarray | None:
        """Decoder output of every item: 0..T-1 for the T most popular, T for the tail (None = identity)."""
        m = M.shape[1]
        T = self.output_items
        if T is None or m <= int(T) + 1:
            return None
        pop = np.bincount(M.indices, minlength=m)
        top = np.argsort(-pop, kind="stable")[: int(T)]
        out = np.full(m, int(T), dtype=np.int64)
        out[top] = np.arange(int(T))
        return out

    def _prep(self, M: sp.csr_matrix) -> sp.csr_matrix:
        M = sp.csr_matrix(M, dtype=np.float32, copy=True)
        if self.input == "binary":
            M.data[:] = 1.0
        elif self.input == "log1p":
            np.log1p(M.data, out=M.data)
        return M

    def _batch(self, M: sp.csr_matrix, rows: np.ndarray):
        torch = _torch()
        B = M[rows].tocoo()
        dev = self._device
        return (torch.from_numpy(B.row.astype(np.int64)).to(dev), torch.from_numpy(B.col.astype(np.int64)).to(dev),
                torch.from_numpy(B.data.astype(np.float32)).to(dev), int(B.shape[0]))

    def _loss(self, net, batch, beta: float, dropout: float, out_map=None, lazy=None):
        torch = _torch()
        if lazy is not None:  # the first layer sees only the batch's items (see _LazyColumnAdam)
            r, c, v, b = batch
            mu, logvar = net.encode((r, lazy.inverse, v, b), dropout, w_first=lazy.block)
        else:
            mu, logvar = net.encode(batch, dropout)
        if logvar is not None and dropout > 0:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        else:
            z = mu
        logp = torch.log_softmax(net.decode(z), dim=1)
        r, c, v, b = batch
        if out_map is not None:  # the tail items share one output (their summed probability)
            c = out_map[c]
        nll = -(logp[r, c] * v).sum() / b  # multinomial log-likelihood of the user's items
        if logvar is None:
            return nll
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()
        return nll + beta * kl

    # ---------------------------------------------------------------- API
    def _threads(self):
        torch = _torch()
        old = torch.get_num_threads()
        if self.n_threads is not None:
            torch.set_num_threads(int(self.n_threads))
        return old

    def fit(self, X: Any, y: Any = None) -> InteractionEncoder:
        """Train on the users of ``X`` (Interactions or users x items matrix)."""
        torch = _torch()
        old = self._threads()
        try:
            return self._fit(X)
        finally:
            torch.set_num_threads(old)

    def _fit(self, X: Any) -> InteractionEncoder:
        torch = _torch()
        from cohortrec._progress import Progress  # noqa: PLC0415

        self._check_params()
        M = self._prep(as_matrix(X))
        n_all, m = M.shape
        if n_all < 2:
            raise ValueError(f"X must hold at least 2 users, got n_samples={n_all}")
        rs = check_random_state(self.random_state)
        torch.manual_seed(int(rs.randint(2**31 - 1)))
        self._device = _resolve_device(self.device)
        sample = self._training_rows(M, rs)
        if sample is not None:
            M = M[sample]
        n = M.shape[0]
        omap = self._output_map(M)
        n_out = m if omap is None else int(self.output_items) + 1
        out_map = None if omap is None else torch.from_numpy(omap).to(self._device)
        tail = 0.0 if omap is None else float(np.mean(omap[M.indices] == n_out - 1)) if M.nnz else 0.0
        self.training_summary_ = {
            "n_users": int(n_all), "n_train_users": int(n),
            "sampling": "all users" if sample is None else
            f"activity-stratified sample (max_train_users={int(self.max_train_users)})",
            "n_items": int(m), "n_outputs": int(n_out), "tail_share": round(tail, 4),
        }
        net = _build(m, [int(h) for h in self.hidden], int(self.n_components), self.model == "vae",
                     n_out).to(self._device)
        first = net.enc[0] if len(net.enc) else net.head
        opt = torch.optim.Adam([p for p in net.parameters() if p is not first.weight], lr=float(self.lr),
                               weight_decay=float(self.weight_decay))
        lazy = _LazyColumnAdam(first.weight, lr=float(self.lr), weight_decay=float(self.weight_decay))
        perm = rs.permutation(n)
        n_val = int(round(float(self.holdout) * n)) if self.holdout else 0
        n_val = min(n_val, n - 1)
        val, train = perm[:n_val], perm[n_val:]
        bs = int(self.batch_size)
        step = 0
        best, best_state, bad = np.inf, None, 0
        self.history_ = []
        self.best_epoch_ = 0
        per_epoch = -(-train.size // bs)
        bar = Progress(int(self.epochs) * per_epoch, f"InteractionEncoder: training on {n} users", unit="batch",
                       enabled=bool(self.verbose))
        for epoch in range(int(self.epochs)):
            net.train()
            order = train[rs.permutation(train.size)]
            total = 0.0
            for s in range(0, order.size, bs):
                rows = order[s:s + bs]
                beta = float(self.beta) * min(1.0, step / max(int(self.anneal_steps), 1))
                batch = self._batch(M, rows)
                lazy.take(batch[1])
                loss = self._loss(net, batch, beta, float(self.dropout), out_map, lazy)
                opt.zero_grad()
                loss.backward()
                opt.step()
                lazy.step()
                step += 1
                total += float(loss.detach()) * rows.size
                bar.update(1, epoch=epoch + 1)
            rec = {"epoch": epoch, "train_loss": total / max(train.size, 1)}
            if n_val:
                net.eval()
                with torch.no_grad():
                    vl = sum(float(self._loss(net, self._batch(M, val[s:s + bs]), float(self.beta), 0.0, out_map))
                             * val[s:s + bs].size for s in range(0, n_val, bs)) / n_val
                rec["val_loss"] = vl
                if vl < best - 1e-4 * abs(best if np.isfinite(best) else 1.0):
                    best, bad = vl, 0
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                    self.best_epoch_ = epoch
                else:
                    bad += 1
            self.history_.append(rec)
            if n_val and bad >= int(self.patience):
                break
        bar.close()
        if best_state is not None:
            net.load_state_dict(best_state)
        if not n_val:
            self.best_epoch_ = len(self.history_) - 1
        net.eval()
        self.model_ = net
        self.n_items_ = self.n_features_in_ = m
        self.n_outputs_ = n_out
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Posterior-mean embeddings of the users of ``X`` (fold-in, no retraining)."""
        torch = _torch()
        check_fitted(self, "model_")
        M = as_matrix(X)
        check_n_items(M, self.n_items_, owner=type(self).__name__)
        M = self._prep(M)
        n = M.shape[0]
        out = np.empty((n, int(self.n_components)), dtype=np.float32)
        bs = max(int(self.batch_size), 4096)
        from cohortrec._progress import Progress  # noqa: PLC0415

        old = self._threads()
        bar = Progress(n, "InteractionEncoder: embedding users", unit="user", enabled=bool(self.verbose))
        try:
            with torch.no_grad():
                for s in range(0, n, bs):
                    mu, _ = self.model_.encode(self._block(M, s, min(s + bs, n)), 0.0)
                    out[s:s + bs] = mu.cpu().numpy()
                    bar.update(min(bs, n - s))
        finally:
            bar.close()
            torch.set_num_threads(old)
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        tags.transformer_tags.preserves_dtype = []  # the network computes in float32 whatever X holds
        return tags

    # In-memory pickling (joblib, Dask workers, scikit-learn pipelines): the
    # network travels as its state dict and is rebuilt on arrival. Files are
    # written with save() (safetensors), never with pickle.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        net = state.pop("model_", None)
        if net is not None:
            state["_model_state"] = {k: v.detach().cpu() for k, v in net.state_dict().items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weights = state.pop("_model_state", None)
        self.__dict__.update(state)
        if weights is not None:
            net = _build(self.n_items_, self.hidden, int(self.n_components), self.model == "vae",
                         getattr(self, "n_outputs_", None))
            net.load_state_dict(weights)
            self.model_ = net.to(self._device).eval()

    def _block(self, M: sp.csr_matrix, start: int, stop: int):
        """:meth:`_batch` of the contiguous rows ``start:stop`` (no fancy indexing)."""
        torch = _torch()
        lo, hi = int(M.indptr[start]), int(M.indptr[stop])
        rows = np.repeat(np.arange(stop - start, dtype=np.int64), np.diff(M.indptr[start:stop + 1]))
        dev = self._device
        return (torch.from_numpy(rows).to(dev), torch.from_numpy(M.indices[lo:hi].astype(np.int64)).to(dev),
                torch.from_numpy(np.ascontiguousarray(M.data[lo:hi], dtype=np.float32)).to(dev), stop - start)

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit, then embed the training users."""
        return self.fit(X).transform(X)

    # ---------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the weights and settings to ``path`` (safetensors; no pickle).

        Without the ``safetensors`` package a ``torch.save`` file of plain
        tensors is written instead (read back with ``weights_only=True``).
        """
        check_fitted(self, "model_")
        torch = _torch()
        meta = {k: getattr(self, k) for k in _PARAMS}
        meta["hidden"] = [int(h) for h in self.hidden]
        meta["n_items_"] = int(self.n_items_)
        meta["n_outputs_"] = int(getattr(self, "n_outputs_", self.n_items_))
        state = {k: v.detach().cpu().contiguous() for k, v in self.model_.state_dict().items()}
        try:
            from safetensors.torch import save_file  # noqa: PLC0415
        except ImportError:
            torch.save({"config": json.dumps(meta), "state": state}, os.fspath(path))
            return
        save_file(state, os.fspath(path), metadata={"cohortrec.InteractionEncoder": json.dumps(meta)})

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str = "auto") -> InteractionEncoder:
        """Read an encoder written by :meth:`save`."""
        torch = _torch()
        path = os.fspath(path)
        try:
            from safetensors import safe_open  # noqa: PLC0415
            from safetensors.torch import load_file  # noqa: PLC0415

            with safe_open(path, framework="pt") as fh:
                meta = json.loads((fh.metadata() or {})["cohortrec.InteractionEncoder"])
            state = load_file(path)
        except (ImportError, KeyError, OSError, Exception) as exc:  # not a safetensors file
            try:
                blob = torch.load(path, weights_only=True)
            except Exception:
                raise ValueError(f"{path} is not an InteractionEncoder file ({exc})") from None
            meta, state = json.loads(blob["config"]), blob["state"]
        try:
            n_items = int(meta.pop("n_items_"))
            n_outputs = int(meta.pop("n_outputs_", n_items))  # files written before output_items: every item
            meta.setdefault("max_train_users", None)
            meta.setdefault("output_items", None)
            enc = cls(**meta, device=device)
            enc._device = _resolve_device(device)
            net = _build(n_items, enc.hidden, int(enc.n_components), enc.model == "vae", n_outputs)
            net.load_state_dict(state)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # torch: size mismatch, missing keys
            raise ValueError(f"{path} is an inconsistent InteractionEncoder file: {exc}") from None
        enc.model_ = net.to(enc._device).eval()
        enc.n_items_ = enc.n_features_in_ = n_items
        enc.n_outputs_ = n_outputs
        enc.history_ = []
        enc.best_epoch_ = -1
        return enc
