"""Generate a synthetic UMLS Metathesaurus release in the real RRF column layout.

MRCONSO.RRF (18 columns), MRREL.RRF (16 columns), MRSTY.RRF (6 columns) and MRDEF.RRF
(8 columns), every row ending with ``|``. Content is random but shaped like UMLS: several
atoms per concept (English and other languages, preferred and non-preferred, some
suppressed), diseases (T047) with ``has_manifestation`` / ``has_finding_site`` links to signs
and symptoms (T184) and body parts (T023), ``PAR``/``CHD`` hierarchies, ``RO``/``RB`` rows
without RELA, duplicate rows, rows to unknown CUIs. No UMLS content is used.

    python benchmarks/gen_rrf.py OUT_DIR --conso 1000000 --rel 2000000 [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SABS = np.array(["MSH", "SNOMEDCT_US", "NCI", "MDR", "ICD10CM", "HPO", "MEDLINEPLUS"])
LATS = np.array(["ENG"] * 8 + ["SPA", "FRE"])
TTYS = np.array(["PT", "SY", "PN", "FN", "ET"])
WORDS = np.array(
    "acute chronic primary secondary familial juvenile neonatal progressive idiopathic "
    "syndrome disease disorder deficiency fever pain seizure tremor rigidity headache rash "
    "arthralgia polyuria polydipsia anemia neuropathy myopathy dementia ataxia palsy sclerosis "
    "cardiac renal hepatic pulmonary cerebral spinal muscular cutaneous ocular vascular "
    "type 1 2 3 of the with and left right upper lower bilateral".split()
)
STYS = [("T047", "Disease or Syndrome", "B2.2.1.2.1"), ("T184", "Sign or Symptom", "A2.2.2"),
        ("T023", "Body Part, Organ, or Organ Component", "A1.2.3.1"), ("T033", "Finding", "A2.2")]
RELAS = np.array(["has_manifestation", "manifestation_of", "has_finding_site", "finding_site_of",
                  "clinically_associated_with", "", "", "isa", "inverse_isa"])
RELS = np.array(["RO", "RO", "RO", "RO", "RO", "RB", "RO", "CHD", "PAR"])


def _names(rng: np.random.Generator, n: int) -> list[str]:
    k = rng.integers(2, 6, size=n)
    w = WORDS[rng.integers(len(WORDS), size=int(k.sum()))]
    out, i = [], 0
    for j, kk in enumerate(k.tolist()):
        out.append(" ".join(w[i : i + kk]) + f" {j % 9973}")
        i += kk
    return out


def generate(out: Path, n_conso: int, n_rel: int, seed: int = 0, chunk: int = 500_000) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    n_cui = max(10, n_conso // 4)
    cuis = np.sort(rng.choice(9_000_000, size=n_cui, replace=False)) + 100_000
    kind = rng.choice(4, size=n_cui, p=[0.4, 0.3, 0.2, 0.1])  # index into STYS
    rows = 0
    with open(out / "MRCONSO.RRF", "w", encoding="utf-8") as fh:
        for s in range(0, n_conso, chunk):
            m = min(chunk, n_conso - s)
            ci = np.sort(rng.integers(n_cui, size=m))
            lat = LATS[rng.integers(len(LATS), size=m)]
            ts = np.where(rng.random(m) < 0.4, "P", "S")
            stt = np.where(rng.random(m) < 0.5, "PF", "VO")
            ispref = np.where(rng.random(m) < 0.5, "Y", "N")
            sab = SABS[rng.integers(len(SABS), size=m)]
            tty = TTYS[rng.integers(len(TTYS), size=m)]
            sup = np.where(rng.random(m) < 0.03, "O", "N")
            code = rng.integers(1, 10_000_000, size=m)
            nocode = rng.random(m) < 0.05
            names = _names(rng, m)
            lines = []
            for j in range(m):
                c = int(cuis[ci[j]])
                a = s + j
                cd = "NOCODE" if nocode[j] else f"{sab[j][0]}{code[j]}"
                lines.append(
                    f"C{c:07d}|{lat[j]}|{ts[j]}|L{a:07d}|{stt[j]}|S{a:07d}|{ispref[j]}|A{a:08d}||||"
                    f"{sab[j]}|{tty[j]}|{cd}|{names[j]}|0|{sup[j]}|256|\n"
                )
            fh.writelines(lines)
            rows += m
    with open(out / "MRSTY.RRF", "w", encoding="utf-8") as fh:
        fh.writelines(
            f"C{int(c):07d}|{STYS[k][0]}|{STYS[k][2]}|{STYS[k][1]}|AT{i:08d}|256|\n"
            for i, (c, k) in enumerate(zip(cuis.tolist(), kind.tolist()))
        )
    with open(out / "MRDEF.RRF", "w", encoding="utf-8") as fh:
        pick = rng.choice(n_cui, size=n_cui // 10, replace=False)
        fh.writelines(
            f"C{int(cuis[i]):07d}|A{i:08d}|AT{i:08d}||MSH|definition of concept {i}|N|256|\n"
            for i in np.sort(pick).tolist()
        )
    dis, sym = np.flatnonzero(kind == 0), np.flatnonzero(kind != 0)
    with open(out / "MRREL.RRF", "w", encoding="utf-8") as fh:
        for s in range(0, n_rel, chunk):
            m = min(chunk, n_rel - s)
            t = rng.integers(len(RELAS), size=m)
            a = dis[rng.integers(len(dis), size=m)]
            b = sym[rng.integers(len(sym), size=m)]
            isa = t >= 7
            b = np.where(isa, dis[rng.integers(len(dis), size=m)], b)
            swap = np.isin(t, [1, 3])  # manifestation_of: CUI1 is the disease
            c1 = np.where(swap, a, b)
            c2 = np.where(swap, b, a)
            c1v, c2v = cuis[c1], cuis[c2]
            dangling = rng.random(m) < 0.01
            c1v = np.where(dangling, 9_999_999, c1v)
            sab = SABS[rng.integers(len(SABS), size=m)]
            sup = np.where(rng.random(m) < 0.02, "O", "N")
            lines = [
                f"C{int(c1v[j]):07d}|A1|CUI|{RELS[t[j]]}|C{int(c2v[j]):07d}|A2|CUI|{RELAS[t[j]]}|R{s + j:08d}||"
                f"{sab[j]}|{sab[j]}|||{sup[j]}|256|\n"
                for j in range(m)
            ]
            fh.writelines(lines)
    return {"MRCONSO": n_conso, "MRREL": n_rel, "concepts": n_cui}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--conso", type=int, default=100_000)
    p.add_argument("--rel", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    print(generate(a.out, a.conso, a.rel, a.seed))


if __name__ == "__main__":
    main()
