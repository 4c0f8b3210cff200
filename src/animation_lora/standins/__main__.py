"""`python -m animation_lora.standins DIR --film FILM`: the studio's models as tiny stand-ins under DIR and
DIR/rehearsal.yml, then `kedro run --config DIR/rehearsal.yml` rehearses `--env studio` on FILM."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from . import (
    REHEARSAL_SIZES,
    SDXL_PICTURES,
    deep_merge,
    sd15,
    sdxl,
    sdxl_run_parameters,
    write_run_config,
    write_standins,
)
from . import __doc__ as DOC


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="where the stand-ins and rehearsal.yml go")
    parser.add_argument("--film", required=True, help="the film to rehearse on (a short clip is enough)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sd15", choices=("folder", "single_file"), default="folder",
                        help="which of SD 1.5's two forms diffusion.sd15.path points at")
    parser.add_argument("--sdxl", choices=("folder", "single_file"),
                        help="rehearse the SDXL run (conf/studio-sdxl.yml) on the SDXL stand-in in this form")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    params = write_standins(args.folder, args.seed)
    if args.sd15 == "single_file":
        params = deep_merge(params, sd15.single_file_parameters(Path(args.folder) / "sd15"))
    sizes = REHEARSAL_SIZES
    if args.sdxl:  # the SDXL run's parameters, a tiny film's sizes over them (pictures at 512 px as SD 1.5's)
        sizes = deep_merge(deep_merge(sdxl_run_parameters(Path.cwd()), REHEARSAL_SIZES), SDXL_PICTURES)
        if args.sdxl == "single_file":
            params = deep_merge(params, sdxl.single_file_parameters(Path(args.folder) / "sdxl"))
    print(write_run_config(args.folder, args.film, params, sizes))


if __name__ == "__main__":
    main()
