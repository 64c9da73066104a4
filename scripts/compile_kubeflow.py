"""Writes the Kubeflow Pipelines V2 spec of a model's pipeline (or its continuous-learning
training run) for kfp.Client().create_run_from_pipeline_package.

  python scripts/compile_kubeflow.py --model risk --pipeline-root gs://bucket/etrm -o risk.json
  python scripts/compile_kubeflow.py --model risk --window 1 3 --baseline-version 2 ...
"""
import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from ml.core.process import configure  # noqa: E402

configure()


def main(argv=None) -> int:
    from ml.core import registry

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="risk", help="registry key: " + ", ".join(registry.KEYS))
    parser.add_argument("--pipeline-root", required=True, help="gs://, s3:// or minio:// root")
    parser.add_argument("--image", default=None, help="image every task runs (the Dockerfile's tag)")
    parser.add_argument("--span", type=int, default=0, help="span the ingestion run ingests")
    parser.add_argument("--records-per-span", type=int, default=20000)
    parser.add_argument("--window", type=int, nargs=2, metavar=("FIRST", "LAST"),
                        help="compile the training run of spans FIRST..LAST instead")
    parser.add_argument("--baseline-version", type=int, default=-1,
                        help="serving version labelled stable (-1: none), with --window")
    parser.add_argument("-o", "--output", type=pathlib.Path, default=None)
    args = parser.parse_args(argv)
    try:
        entry = registry.get_model(args.model)
    except ValueError as error:
        parser.exit(2, f"error: --model: {error}\n")
    if args.span < 0 or (args.window and not 0 <= args.window[0] <= args.window[1]):
        parser.exit(2, "error: spans must be >= 0 and --window FIRST <= LAST\n")

    from ml.core import logs
    from ml.core.home import Home
    from pipeline.config import DataSettings, ModelSettings

    try:
        data = DataSettings(dataset=entry.dataset, span=args.span,
                            records_per_span=args.records_per_span)
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    output = args.output or pathlib.Path(f"{entry.pipeline_name}.json")
    # Library warnings and TensorFlow's C++ logs go to the local home's log file.
    with logs.terminal(Home.resolve(None), "compile-kubeflow"):
        from pipeline import orchestrators

        image = args.image or orchestrators.DEFAULT_IMAGE
        if args.window:
            orchestrators.compile_kubeflow_window(
                output, entry.dataset, args.window[0], args.window[1], args.baseline_version,
                ModelSettings(), pipeline_root=args.pipeline_root, image=image)
        else:
            orchestrators.compile_kubeflow(output, data, ModelSettings(),
                                           pipeline_root=args.pipeline_root, image=image)
    print(f"wrote {output} (image {image})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
