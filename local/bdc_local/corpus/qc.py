"""Quality control sections of the synthetic records: metrics, status histories, aggregate status.

A part of the builder (:class:`_QualityControl` is a base of ``_CorpusBuilder``) kept apart
because QC is the messiest section of a record and the one most tables derive from.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bdc_local.corpus.families import _SCHEMA_URL, MODALITY_NAMES, Record
from bdc_local.corpus.templates import _clone, _modality, _Seeded

if TYPE_CHECKING:  # the builder subclasses _QualityControl; importing it at run time would be a cycle
    from bdc_local.corpus.builder import _Session


class _QualityControl(_Seeded):
    """The builder's quality-control methods (they draw from the builder's RNG)."""

    # -- quality control ---------------------------------------------------------------
    def quality_control(
        self, session: _Session, modalities: Sequence[str], t0: datetime, stage: str, full: bool
    ) -> tuple[Record, datetime]:
        kind = session.subject.family.qc_kind
        fmt = session.subject.time_style.fmt
        latest = t0
        if kind in self.t.metric_pools:
            pool = self.t.metric_pools_full[kind] if full else self.t.metric_pools[kind]
            if full or len(pool) <= 4:
                chosen = pool
            else:
                picks = sorted(self.rng.sample(range(len(pool)), self.rng.randint(1, 4)))
                chosen = [pool[i] for i in picks]
            metrics = [_clone(metric) for metric in chosen]
            if full:
                grouping = _clone(self.t.default_grouping[kind])
            else:
                grouping = ["modality", _tag_types(metrics)]
        else:
            metrics = self.synthetic_metrics(kind, modalities, stage)
            grouping = ["modality", _tag_types(metrics)]
        for metric in metrics:
            metric["status_history"], reviewed = self.status_history(t0, fmt)
            latest = max(latest, reviewed)
        status = _aggregate_status(metrics)
        if self.chance(0.02):
            status["Stale tag:removed"] = "Fail"  # a status left behind by a deleted metric
        qc = {
            "object_type": "Quality control",
            "describedBy": _SCHEMA_URL.format("quality_control"),
            "schema_version": "2.4.0",
            "metrics": metrics,
            "key_experimenters": None,
            "notes": None,
            "default_grouping": grouping,
            "allow_tag_failures": [],
            "status": status,
        }
        return qc, latest

    def status_history(self, t0: datetime, fmt: Any) -> tuple[list[Record], datetime]:
        t = t0 + timedelta(seconds=self.rng.uniform(0, 300))
        first = self.weighted([("Pass", 0.6), ("Fail", 0.14), ("Pending", 0.26)])
        history = [
            {"object_type": "QC status", "evaluator": "Automated", "status": first, "timestamp": fmt(t)}
        ]
        if self.chance(0.25):
            t = self.before_horizon(t, 1, 24 * 30)
            reviewer = self.rng.choice(("Huy Nguyen", "Olivia Unokesan", "Ren Takeda", "Priya Raman"))
            history.append(
                {
                    "object_type": "QC status",
                    "evaluator": reviewer,
                    "status": self.weighted([("Pass", 0.75), ("Fail", 0.25)]),
                    "timestamp": fmt(t),
                }
            )
        return history, t

    def synthetic_metrics(self, kind: str, modalities: Sequence[str], stage: str) -> list[Record]:
        specs = _SYNTHETIC_METRICS[kind]
        usable = [s for s in specs if s[1] in modalities or s[1] == "*"]
        if not usable:
            usable = specs
        count = min(len(usable), self.rng.randint(1, 5))
        picks = sorted(self.rng.sample(range(len(usable)), count))
        metrics = []
        for i in picks:
            name, modality, tag_type, tag_values, value_kind = usable[i]
            abbreviation = modality if modality != "*" else modalities[0] if modalities else "behavior"
            if abbreviation not in MODALITY_NAMES:
                abbreviation = "behavior"
            tag_value = self.rng.choice(tag_values)
            metric: Record = {
                "object_type": "QC metric",
                "name": f"{name} {tag_value}" if tag_type else name,
                "modality": _modality(abbreviation),
                "stage": stage
                if self.chance(0.8)
                else ("Raw data" if stage == "Processing" else "Processing"),
                "value": self.metric_value(value_kind),
                "status_history": [],
                "description": f"Check {name.lower()}.",
                "reference": None,
                "tags": {tag_type: tag_value} if tag_type else {},  # the schema's tags are a dict
                "evaluated_assets": None,
            }
            if value_kind == "curation":
                metric["object_type"] = "Curation metric"
                metric["type"] = "ecephys units"
                metric["curation_history"] = [{"curator": "Owen Price", "timestamp": "2025-01-01T00:00:00Z"}]
            metrics.append(metric)
        return metrics

    def metric_value(self, kind: str) -> Any:
        rng = self.rng
        if kind == "none":
            return None
        if kind == "bool":
            return rng.random() < 0.8
        if kind == "int":
            return rng.randint(0, 5000)
        if kind == "float":
            return round(rng.uniform(0, 1), 4)
        if kind == "str":
            return rng.choice(
                ("ok", "Drift detected", "Sorted with Kilosort 4", "no licks in first 10 min", "")
            )
        if kind == "list":
            return sorted(rng.sample(range(384), rng.randint(0, 6)))
        if kind == "dict":
            return {"value": round(rng.uniform(0, 100), 2), "unit": "percent", "threshold": 5}
        if kind == "dropdown":
            return {
                "value": None,
                "options": ["Good", "Acceptable", "Bad"],
                "status": ["Pass", "Pass", "Fail"],
                "type": "dropdown",
            }
        if kind == "curation":  # a Curation metric's value is a list (one entry per curation)
            return [{"unit_id": i, "label": rng.choice(("good", "mua", "noise"))} for i in range(3)]
        raise ValueError(kind)



# (name, modality or "*", tag type or None, tag values, value kind)
_MetricSpec = tuple[str, str, str | None, tuple[str, ...], str]
_SYNTHETIC_METRICS: dict[str, list[_MetricSpec]] = {
    "behavior": [
        ("Lick interval violations", "behavior", "Behavior", ("Licks",), "float"),
        ("Reward delivery", "behavior", "Behavior", ("Rewards",), "bool"),
        ("Side bias", "behavior", "Behavior", ("Performance",), "float"),
        ("Finished trials", "behavior", "Behavior", ("Performance",), "int"),
        ("Task parameters", "behavior", "Behavior", ("Task",), "dict"),
        ("Session notes", "behavior", None, ("",), "str"),
        ("Video frame count", "behavior-videos", "Video", ("BottomCamera", "SideCamera"), "int"),
        ("Dropped frames", "behavior-videos", "Video", ("BottomCamera", "SideCamera"), "list"),
        ("Timestamps monotonic", "behavior-videos", "Video", ("BottomCamera", "SideCamera"), "bool"),
        ("Reviewer comment", "*", None, ("",), "none"),
    ],
    "ecephys": [
        ("AP band noise", "ecephys", "Probe", ("ProbeA", "ProbeB", "ProbeC", "ProbeD"), "float"),
        ("Drift map", "ecephys", "Probe", ("ProbeA", "ProbeB", "ProbeC", "ProbeD"), "dropdown"),
        ("Unit yield", "ecephys", "Probe", ("ProbeA", "ProbeB", "ProbeC", "ProbeD"), "int"),
        ("Bad channels", "ecephys", "Probe", ("ProbeA", "ProbeB", "ProbeC", "ProbeD"), "list"),
        ("Sorting summary", "ecephys", None, ("",), "str"),
        ("LFP present", "ecephys", None, ("",), "bool"),
        ("Unit curation", "ecephys", "Probe", ("ProbeA", "ProbeB"), "curation"),
        ("Eye camera frames", "behavior-videos", "Video", ("EyeCamera",), "int"),
        ("Running wheel", "behavior", "Behavior", ("Encoder",), "none"),
    ],
    "spim": [
        (
            "Stitching alignment",
            "SPIM",
            "Channel",
            ("Ex_488_Em_525", "Ex_561_Em_593", "Ex_639_Em_667"),
            "dropdown",
        ),
        ("Cell count", "SPIM", "Channel", ("Ex_488_Em_525", "Ex_561_Em_593", "Ex_639_Em_667"), "int"),
        ("Tile overlap", "SPIM", "Channel", ("Ex_488_Em_525", "Ex_639_Em_667"), "list"),
        ("Registration to CCF", "SPIM", "Registration", ("CCF",), "str"),
        ("Intensity saturation", "SPIM", "Channel", ("Ex_488_Em_525", "Ex_639_Em_667"), "float"),
        ("Imaging complete", "SPIM", None, ("",), "bool"),
    ],
    "slap2": [
        ("Motion correction", "slap2", "FOV", ("FOV_0", "FOV_1"), "dropdown"),
        ("Dendrite count", "slap2", "FOV", ("FOV_0", "FOV_1"), "int"),
        ("Frame rate", "slap2", None, ("",), "float"),
        ("Laser power log", "slap2", None, ("",), "dict"),
        ("Notes", "slap2", None, ("",), "str"),
        ("Face camera", "behavior-videos", "Video", ("FaceCamera",), "bool"),
    ],
}


# A probe tip's coordinate system, in the schema's minimum form (lean records: the size

def _tag_types(metrics: Iterable[Record]) -> list[str]:
    types: list[str] = []
    for metric in metrics:
        tags = metric.get("tags")
        for tag in tags if isinstance(tags, dict) else ():
            if tag not in types:
                types.append(tag)
    return types


def _aggregate_status(metrics: Iterable[Record]) -> dict[str, str]:
    """Status per tag key, then per modality, then per stage, like the real QC writer.

    Dict tags give keys ``<type>:<value>``; list tags (ophys) give the tag strings.
    A group fails if any metric fails, else is pending if any is pending.
    """
    groups: dict[str, list[str]] = {}
    modality_groups: dict[str, list[str]] = {}
    stage_groups: dict[str, list[str]] = {}
    for metric in metrics:
        if metric.get("object_type") == "Curation metric":
            continue
        history = metric.get("status_history") or []
        status = history[-1]["status"] if history else "Pending"
        tags = metric.get("tags")
        if isinstance(tags, dict):
            keys = [f"{k}:{v}" for k, v in tags.items()]
        elif isinstance(tags, list):
            keys = [str(t) for t in tags]
        else:
            keys = []
        for key in keys:
            groups.setdefault(key, []).append(status)
        modality = (metric.get("modality") or {}).get("abbreviation")
        if modality:
            modality_groups.setdefault(modality, []).append(status)
        if metric.get("stage"):
            stage_groups.setdefault(metric["stage"], []).append(status)
    result: dict[str, str] = {}
    for group in (groups, modality_groups, stage_groups):
        for key, statuses in group.items():
            result[key] = "Fail" if "Fail" in statuses else "Pending" if "Pending" in statuses else "Pass"
    return result

