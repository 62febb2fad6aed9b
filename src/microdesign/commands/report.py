"""Write a campaign report: best objective vs evaluation, parameter traces, the best design's
microstructure slices and GP partial dependence (PNGs + report.md).

Example:
    microdesign report runs/campaign-20250101-120000/campaign.h5
    microdesign report file=runs/campaign-20250101-120000/campaign.h5 dpi=200
"""

NAME = "report"
HELP = "plots and a Markdown report of a campaign file: microdesign report <campaign.h5>"
CONFIG_NAME = "report"
POSITIONAL = "file"


def run(cfg) -> int:
    from pathlib import Path

    from omegaconf import OmegaConf

    from microdesign.analysis import write_report
    from microdesign.errors import ConfigError
    from microdesign.storage import load_campaign_file

    file = OmegaConf.select(cfg, "file", throw_on_missing=False)
    if file is None or OmegaConf.is_missing(cfg, "file") or not Path(str(file)).is_file():
        raise ConfigError("file", None if OmegaConf.is_missing(cfg, "file") else file, "an existing campaign file (file=<path>)")
    if int(cfg.dpi) < 1:
        raise ConfigError("dpi", cfg.dpi, "a positive resolution [dots per inch], e.g. 120")
    load_campaign_file(str(file), "file")  # the whole file is readable before the report folder is made
    if cfg.out_dir:
        from microdesign.data.files import require_writable

        require_writable(cfg.out_dir, "out_dir", directory=True)
    report = write_report(str(file), cfg.out_dir, int(cfg.dpi))
    import logging

    logging.getLogger(__name__).info("report: %s", report)
    return 0
