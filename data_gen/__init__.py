"""pulmocalc's cohort model: the cited knowledge base, a seeded sampler and its exact posterior."""
from .knowledge import CLASSES, Knowledge, KnowledgeError, load_knowledge

__all__ = ["CLASSES", "Knowledge", "KnowledgeError", "load_knowledge"]
from .sampler import BLOCK_SIZE, generate_cohort, iter_cohort

__all__ += ["BLOCK_SIZE", "generate_cohort", "iter_cohort"]
from .evidence import Evidence, weight_of_evidence
from .oracle import oracle_log_likelihood, oracle_proba
from .prevalence import PrevalenceError
from .shapley import oracle_shapley

__all__ += ["Evidence", "PrevalenceError", "oracle_log_likelihood", "oracle_proba", "oracle_shapley", "weight_of_evidence"]
from .cases import paper_cases

__all__ += ["paper_cases"]
from .contract import ContractError, ContractWarning, LABEL, as_pandas, canonical_frame, validate_frame
from .reader import iter_patients, read_patients

__all__ += ["ContractError", "ContractWarning", "LABEL", "as_pandas", "canonical_frame", "iter_patients", "read_patients", "validate_frame"]
from .dictionary import render_data_dictionary

__all__ += ["render_data_dictionary"]
from .fidelity import fidelity_table

__all__ += ["fidelity_table"]
from .recording import RecordingRegime, resolve_recording

__all__ += ["RecordingRegime", "resolve_recording"]
from .published import PublishedCases, estimate_recording_rates, load_published_cases

__all__ += ["PublishedCases", "estimate_recording_rates", "load_published_cases"]
from .next_best import next_best_findings, next_best_findings_batch

__all__ += ["next_best_findings", "next_best_findings_batch"]
