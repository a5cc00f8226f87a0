"""`interests`: what the traveller wants to do ("hiking", "museums", "wine"), in the order written."""

from __future__ import annotations

from waypoint_orchestrator.extract.reading import _Pattern, _Scan

_INTERESTS: tuple[tuple[str, str], ...] = (
    ("hiking", r"hik(?:e|es|ing)|trek(?:s|king)?|backpacking|trails?"),
    ("beach", r"beach(?:es)?|seaside|sunbathing"),
    ("museums", r"museums?|art galleries|galler(?:y|ies)"),
    ("food", r"food(?:ie)?|culinary|gastronomy|cooking class(?:es)?"),
    ("skiing", r"ski(?:s|ing)?|snowboard(?:ing)?"),
    ("wine", r"wine(?:s|ry|ries)?|vineyards?"),
    ("nightlife", r"night\s?life|clubbing|bars|pubs"),
    ("shopping", r"shopping|shops|boutiques"),
    ("wildlife", r"wildlife|safaris?|animals|penguins|whales?|bird(?:ing|watching)"),
    ("photography", r"photograph(?:y|s)?|photos?"),
    ("culture", r"culture|cultural"),
    ("history", r"history|historic(?:al)?|ruins|castles?"),
    ("architecture", r"architecture"),
    ("nature", r"nature|national parks?|scenery|glaciers?|mountains?|lakes"),
    ("climbing", r"climb(?:ing)?|bouldering"),
    ("kayaking", r"kayak(?:s|ing)?|canoe(?:s|ing)?|rafting"),
    ("diving", r"div(?:e|ing)|scuba|snorkel(?:l?ing)?"),
    ("surfing", r"surf(?:ing)?"),
    ("cycling", r"cycling|biking|bikes?|bicycles?"),
    ("spa", r"spas?|wellness|hot springs"),
    ("camping", r"camping"),
    ("golf", r"golf(?:ing)?"),
    ("music", r"music|concerts?|jazz"),
    ("festivals", r"festivals?"),
    ("theater", r"theat(?:er|re)s?|broadway|opera"),
    ("fishing", r"fishing"),
)
_INTEREST_PATTERNS = tuple((tag, _Pattern(rf"\b(?:{words})\b")) for tag, words in _INTERESTS)


def _read_interests(scan: _Scan) -> list[str]:
    found = [(match.start(), tag) for tag, pattern in _INTEREST_PATTERNS if (match := scan.search(pattern))]
    return [tag for _, tag in sorted(found)]
