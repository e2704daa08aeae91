"""PP-OCRv4 text recognition on rectified plate crops, with grammar-constrained CTC decoding.

The stock decoder takes the argmax over the whole 6,623-character dictionary at every step; on plates its main
error is the province character. Here each plate template (see ``plates.TEMPLATES``) restricts every position to
the characters it may hold (31 provinces first, no I/O, digits where only digits are issued) and a Viterbi
alignment over the CTC output picks the best plate of each template.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from . import plates
from .models import REC_FILE, make_session, model_path

REC_HEIGHT = 48
# Log-priors for characters that a slot allows but that are rare on the road: the authority letter O
# (police/government fleets) is far rarer than Q or D, which the model confuses with it.
_RARE = {(plates.AUTHORITY, "O"): float(np.log(0.05))}
# Characters the model emits for the separator dot, bolts and frame edges: not plate characters.
_JUNK = " ·•.。-_:：'\"`,，|!()[]/\\~"


@dataclass
class TextRead:
    text: str
    char_probs: list[float]
    score: float  # mean log-probability per frame of the chosen path (higher is better)
    kind: str | None = None
    # Per position: the slot's allowed dictionary indices and their (normalised) probability on that position's
    # frames, so several reads of one plate can pool their probability mass per character (see reader).
    slot_probs: list[tuple[np.ndarray, np.ndarray]] | None = None
    # Per position, the sum of the slot's (unnormalised) mass: slot_probs times this is each character's own
    # probability on those frames, which the product of experts needs (a one-character slot normalises to 1).
    slot_totals: list[float] | None = None

    @property
    def confidence(self) -> float:
        return float(min(self.char_probs)) if self.char_probs else 0.0


class CTCDecoder:
    """Grammar-constrained decoding of one CTC model's output, given its class list (index 0 = blank).

    Knows nothing of the model: the PP-OCRv4 recogniser below and the project's own (own_engine.py) each hand it
    their characters, so both are decoded over the same GA 36 template lattice.
    """

    def __init__(self, chars: Sequence[str], local_provinces: str = "", local_weight: float = 4.0,
                 junk: str = _JUNK) -> None:
        self.chars: list[str] = list(chars)
        self.index = {c: i for i, c in enumerate(self.chars) if i > 0}
        self._slot_cache: dict[str, np.ndarray] = {}
        # Optional site prior: at a gate in Linfen most plates are 晋. Each listed province is ``local_weight``
        # times as likely as any other a priori (off by default: no prior from any data set).
        bad = [c for c in local_provinces if c not in plates.PROVINCES]
        if bad or local_weight <= 0:
            raise ValueError(f"local provinces must be among {plates.PROVINCES} and the weight positive")
        self._local = {c: float(np.log(local_weight)) for c in local_provinces}
        self.junk = junk
        self.junk_idx = np.array([0] + [self.index[c] for c in junk if c in self.index], dtype=np.int64)

    # -- decoding ----------------------------------------------------------------------------------------
    def greedy(self, p: np.ndarray) -> TextRead:
        """Stock CTC decoding (argmax over the whole dictionary), junk characters dropped."""
        best = p.argmax(1)
        text, probs, prev = [], [], 0
        for t, k in enumerate(best):
            if k != prev and k != 0:
                ch = self.chars[k]
                if ch not in self.junk:
                    text.append(ch)
                    probs.append(float(p[t, k]))
            prev = k
        mean = float(np.log(p[np.arange(len(best)), best] + 1e-9).mean()) if len(best) else -99.0
        return TextRead(plates.normalize("".join(text)), probs, mean)

    def _slot_idx(self, allowed: str) -> np.ndarray:
        idx = self._slot_cache.get(allowed)
        if idx is None:
            idx = np.array([self.index[c] for c in allowed if c in self.index], dtype=np.int64)
            self._slot_cache[allowed] = idx
        return idx

    def _slot_prior(self, allowed: str) -> np.ndarray:
        key = "prior:" + allowed
        pr = self._slot_cache.get(key)
        if pr is None:
            local = self._local if allowed == plates.PROVINCES else {}
            pr = np.array([_RARE.get((allowed, c), 0.0) + local.get(c, 0.0) for c in allowed if c in self.index],
                          dtype=np.float32)
            self._slot_cache[key] = pr
        return pr

    def constrained(self, p: np.ndarray, slots: Sequence[str]) -> TextRead | None:
        """Best alignment of the CTC output to exactly len(slots) characters, each from its slot's set."""
        return self.constrained_many(p, [slots])[0]

    def constrained_many(self, p: np.ndarray, slot_lists: Sequence[Sequence[str]]) -> list[TextRead | None]:
        """``constrained`` for several templates of one crop in one pass (one result per template, in order).

        States alternate blank/char (blank_0, c_1, blank_1, …, c_L, blank_L). A char state emits the best
        allowed character of its slot at that frame; a blank state also absorbs separator dots and junk. The
        templates' state chains are laid side by side and advanced together: the Viterbi loop over frames is
        the costly part in Python, so it runs once per crop rather than once per template.
        """
        T = p.shape[0]
        logp = np.log(p + 1e-9)
        blank = logp[:, self.junk_idx].max(1)
        todo = [k for k, slots in enumerate(slot_lists) if 0 < len(slots) <= T]
        out: list[TextRead | None] = [None] * len(slot_lists)
        if not todo:
            return out
        offsets, cols, char_state, first = [], [], [], []
        # Per state and frame, the character a char state emits (-1 for blanks) and its slot's runner-up score:
        # CTC writes one character twice only with a blank between, so a step straight from one char state into
        # the next may not emit the character the first one emitted the frame before (its runner-up instead).
        # Without this a crop cut short (川A762Z) is "read" as 川A7662Z, one run of 6s split in two, every
        # character sure of itself.
        ids, alts = [], []
        slot_info: list[list[tuple[np.ndarray, np.ndarray]]] = []
        no_id = np.full(T, -1, dtype=np.int64)
        o = 0
        for k in todo:
            slots = slot_lists[k]
            S = 2 * len(slots) + 1
            offsets.append(o)
            info = [(self._slot_idx(sl), self._slot_prior(sl)) for sl in slots]
            slot_info.append(info)
            cols.append(blank)
            ids.append(no_id)
            alts.append(blank)
            for idx, prior in info:
                vals = logp[:, idx] + prior
                arg = vals.argmax(1)
                best = vals[np.arange(T), arg]
                cols.append(best)
                ids.append(idx[arg])
                if len(idx) > 1:
                    alts.append(np.partition(vals, -2, axis=1)[:, -2])
                else:
                    alts.append(np.full(T, -1e9, dtype=vals.dtype))
                cols.append(blank)
                ids.append(no_id)
                alts.append(blank)
            char_state += [False] + [True, False] * len(slots)
            first += [True] + [False] * (S - 1)
            o += S
        # Column order above is blank, c_1, blank, c_2, …: the state order of each chain.
        emit = np.stack(cols, axis=1).astype(np.float32)
        n = emit.shape[1]
        neg = np.float32(-1e9)
        emitted = np.stack(ids, axis=1)
        # skip_cost[t, s]: what the step s-2 → s at frame t loses by CTC's rule (0 when the characters differ).
        same = np.zeros((T, n), dtype=bool)
        same[1:, 2:] = (emitted[1:, 2:] == emitted[:-1, :-2]) & (emitted[1:, 2:] >= 0)
        skip_cost = np.where(same, np.stack(alts, axis=1).astype(np.float32) - emit, 0.0).astype(np.float32)
        char_arr = np.array(char_state)
        start = np.array(first)
        # Moves that would cross from one template's chain into the next are never allowed: no step into a
        # chain's first state, no skip into its first two.
        no_step2 = ~char_arr | start | np.concatenate(([True], start[:-1]))
        score = np.full(n, neg, dtype=np.float32)
        offs = np.array(offsets)
        score[offs], score[offs + 1] = emit[0, offs], emit[0, offs + 1]
        back = np.zeros((T, n), dtype=np.int8)  # 0 stay, 1 from s-1, 2 from s-2
        cand = np.empty((3, n), dtype=np.float32)
        cols_idx = np.arange(n)
        for t in range(1, T):
            cand[0] = score
            cand[1, 0] = neg
            cand[1, 1:] = score[:-1]
            cand[1, start] = neg
            cand[2, :2] = neg
            cand[2, 2:] = score[:-2] + skip_cost[t, 2:]
            cand[2, no_step2] = neg
            arg = cand.argmax(0)
            score = cand[arg, cols_idx] + emit[t]
            back[t] = arg
        for j, k in enumerate(todo):
            o, L = offsets[j], len(slot_lists[k])
            last = o + 2 * L
            end = last if score[last] >= score[last - 1] else last - 1
            total = float(score[end])
            if total < -1e8:
                continue
            frames: list[list[int]] = [[] for _ in range(L)]
            s_ = end - o
            for t in range(T - 1, -1, -1):
                if s_ % 2 == 1:
                    frames[s_ // 2].append(t)
                s_ -= int(back[t, o + s_])
            out[k] = self._read_out(p, logp, frames, slot_info[j], total / T)
        return out

    def _read_out(self, p: np.ndarray, logp: np.ndarray, frames: list[list[int]],
                  info: list[tuple[np.ndarray, np.ndarray]], score: float) -> TextRead | None:
        text, probs, slot_probs, totals = [], [], [], []
        prev_char, prev_end = -1, -2
        for fr, (idx, prior) in zip(frames, info, strict=True):
            if not fr:
                return None
            seg = logp[fr][:, idx].sum(0) + prior
            best = int(idx[int(seg.argmax())])
            if best == prev_char and min(fr) == prev_end + 1 and len(idx) > 1:
                # No blank between this position and the last: by CTC's rule it cannot repeat its character.
                seg[int(seg.argmax())] = -np.inf
                best = int(idx[int(seg.argmax())])
            prev_char, prev_end = best, max(fr)
            text.append(self.chars[best])
            probs.append(float(p[fr, best].max()))
            mass = p[fr][:, idx].max(0) * np.exp(prior)
            slot_probs.append((idx, mass / max(float(mass.sum()), 1e-9)))
            totals.append(float(mass.sum()))
        return TextRead("".join(text), probs, score, slot_probs=slot_probs, slot_totals=totals)

    def read_plate(self, p: np.ndarray, kinds: Sequence[str] | None = None) -> TextRead | None:
        """Best grammar-valid plate among the templates of the given kinds (all when None)."""
        best: TextRead | None = None
        for template in plates.TEMPLATES:
            if kinds is not None and template.kind not in kinds:
                continue
            r = self.constrained(p, template.slots)
            if r is not None and (best is None or r.score > best.score):
                r.kind = template.kind
                best = r
        return best


class Recognizer(CTCDecoder):
    """PP-OCRv4's recogniser: one onnxruntime session; ``run`` is serialised by a lock so one object may serve
    several threads."""

    def __init__(self, threads: int = 1, local_provinces: str = "", local_weight: float = 4.0) -> None:
        self.session = make_session(model_path(REC_FILE), threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        # CTC layout of PaddleOCR: index 0 is blank, then the dictionary, then a space.
        super().__init__(["<blank>"] + meta["character"].splitlines() + [" "], local_provinces, local_weight)
        self._input = self.session.get_inputs()[0].name
        self._lock = threading.Lock()

    # -- model -------------------------------------------------------------------------------------------
    def _prep(self, img: np.ndarray, width: int) -> np.ndarray:
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        resized = cv2.resize(img, (width, REC_HEIGHT), interpolation=cv2.INTER_LINEAR)
        x = resized.astype(np.float32).transpose(2, 0, 1)
        return x * (2.0 / 255.0) - 1.0

    def probs(self, crops: Sequence[np.ndarray], stretch: float = 1.0) -> list[np.ndarray]:
        """Softmax outputs (T×C) for each crop; crops are resized to height 48 and batched by width."""
        if not crops:
            return []
        widths = []
        for c in crops:
            h, w = c.shape[:2]
            # Stretching wide gives CTC more steps per character: repeated digits (88888) need a blank between.
            widths.append(int(np.clip(round(REC_HEIGHT * w / max(h, 1) * stretch / 8) * 8, 64, 640)))
        out: list[np.ndarray | None] = [None] * len(crops)
        order = np.argsort(widths)
        # Batch crops of similar width; pad with the value 0 (mid-grey after normalisation) like PaddleOCR.
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and widths[order[j + 1]] <= widths[order[i]] * 1.25 and j + 1 - i < 7:
                j += 1
            idx = order[i : j + 1]
            wmax = max(widths[k] for k in idx)
            batch = np.zeros((len(idx), 3, REC_HEIGHT, wmax), dtype=np.float32)
            for b, k in enumerate(idx):
                batch[b, :, :, : widths[k]] = self._prep(crops[k], widths[k])
            with self._lock:
                pred = self.session.run(None, {self._input: batch})[0]
            for b, k in enumerate(idx):
                steps = int(np.ceil(widths[k] / 8))
                out[k] = pred[b, :steps]
            i = j + 1
        return out  # type: ignore[return-value]
