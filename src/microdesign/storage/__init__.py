"""HDF5 campaign file: single writer, crash-safe transactions (copy, fsync, atomic rename)."""

from microdesign.storage.campaign_file import (
    FORMAT,
    FORMAT_VERSION,
    RESULT_GROUPS,
    STATUSES,
    CampaignFileError,
    CampaignStore,
    TrialRecord,
    load_campaign_file,
    register_result_type,
)

__all__ = ["FORMAT", "FORMAT_VERSION", "RESULT_GROUPS", "STATUSES", "CampaignFileError", "CampaignStore", "TrialRecord",
           "load_campaign_file", "register_result_type"]
