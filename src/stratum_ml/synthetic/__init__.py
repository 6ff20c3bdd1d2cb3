"""The synthetic municipality: source tables with planted mechanisms and their ground truth.

Public API
----------
GeneratorConfig                         the knobs (size, seed, dates, prevalences, visit policy)
generate_tables(cfg) -> Municipality    everything in memory, normalised dtypes
generate_municipality(cfg, out_dir=..., truth_file=..., fmt=..., progress=...) -> str
truth_at(truth, address_ids, dates) -> np.ndarray[bool]
read_truth(path) -> pd.DataFrame          the truth file, with fixed dtypes
"""

from stratum_ml.synthetic.config import GeneratorConfig
from stratum_ml.synthetic.generate import Municipality, generate_municipality, generate_tables
from stratum_ml.synthetic.truth import MECHANISMS, TRUTH_COLUMNS, read_truth, truth_at

__all__ = [
    "MECHANISMS",
    "TRUTH_COLUMNS",
    "GeneratorConfig",
    "Municipality",
    "generate_municipality",
    "generate_tables",
    "read_truth",
    "truth_at",
]
