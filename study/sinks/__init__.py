from study.sinks.base import ResultSink, TrialEnd, TrialStart

__all__ = ["ResultSink", "TrialEnd", "TrialStart"]
