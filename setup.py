from setuptools import find_packages, setup

setup(
    name="tfvamp",
    version="0.1.0",
    description="VAEs with a VampPrior (Tomczak & Welling, AISTATS 2018) in TensorFlow/Keras and TFP",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",  # keras 3.15
    packages=find_packages(include=["tfvamp", "tfvamp.*", "trainers", "trainers.*", "configs", "configs.*"]),
    package_data={"tfvamp.datasets": ["data/*.mat", "data/*.md"], "configs": ["*.cfg"]},
    license="MIT",
    license_files=["LICENSE"],
    install_requires=[
        "tensorflow==2.21.*",
        "tensorflow-probability==0.25.*",
        "tf-keras==2.21.*",  # TFP needs it to import
        "tensorflow-serving-api==2.21.*",  # the serving client (tfvamp.serving)
        "keras>=3.15,<4",
        "tensorflow-datasets",
        "importlib_resources",  # tensorflow-datasets imports it to prepare a dataset but does not declare it
        "absl-py",
        "numpy",
        "scipy",  # .mat files
        "matplotlib",  # figures
        "tensorboard==2.21.*",  # TensorBoard summaries (tf.summary needs it)
    ],
    extras_require={
        # the documentation site (mkdocs build --strict with Material for MkDocs; ruff lays
        # out the API reference's signatures) and examples/tabular_vampprior.py
        # (scikit-learn's bundled data), all run by the tests
        "test": ["pytest", "mkdocs>=1.6,<2", "mkdocs-material>=9.5,<10",
                 "mkdocstrings[python]>=1.0.7,<2", "ruff>=0.4", "scikit-learn"],
    },
)
