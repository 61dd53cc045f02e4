"""Real data shipped in the package, readers, loaders of downloadable data
sets (MovieLens), and generated test matrices."""
from sparsecore.datasets._generators import (
    make_banded,
    make_erdos_renyi,
    make_laplacian,
    make_powerlaw,
    make_rmat,
    make_sparse_linear,
    make_tall_skinny,
)
from sparsecore.datasets._tasks import (
    SYNTHETIC_STRUCTURES,
    make_block_interactions,
    make_movielens_multitask,
    make_multimnist,
    make_routing_regression,
)
from sparsecore.datasets._kronecker import (
    IRSChannelProblem,
    KroneckerProblem,
    irs_training,
    make_irs_channel,
    make_kronecker_sparse,
    steering_dictionary,
)
from sparsecore.datasets._movielens import (
    MovieLensRatings,
    cache_movielens_from_recbole,
    fetch_movielens,
    get_data_home,
)
from sparsecore.datasets._matrices import (
    find_matrix_dir,
    list_matrices,
    load_matrix,
    read_matrix_market,
)

__all__ = [
    "SYNTHETIC_STRUCTURES",
    "IRSChannelProblem",
    "KroneckerProblem",
    "MovieLensRatings",
    "cache_movielens_from_recbole",
    "fetch_movielens",
    "get_data_home",
    "find_matrix_dir",
    "irs_training",
    "list_matrices",
    "load_matrix",
    "make_banded",
    "make_block_interactions",
    "make_erdos_renyi",
    "make_irs_channel",
    "make_kronecker_sparse",
    "make_laplacian",
    "make_movielens_multitask",
    "make_multimnist",
    "make_powerlaw",
    "make_rmat",
    "make_routing_regression",
    "make_sparse_linear",
    "make_tall_skinny",
    "read_matrix_market",
    "steering_dictionary",
]
