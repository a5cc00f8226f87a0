"""`travelers`: the party size: counted ("2 adults and a child"), given ("for 4") or implied
("my wife and I")."""

from __future__ import annotations

from waypoint_orchestrator.extract.reading import _NUM, _number, _Pattern, _Scan

_PARTY_MEMBERS = _Pattern(
    rf"\b(?P<n>{_NUM})\s+(?P<who>adults?|grown-?ups|children|kids?|teens?|teenagers?|infants?|bab(?:y|ies)"
    r"|toddlers?)\b",
)
_PEOPLE = _Pattern(
    rf"\b(?P<n>{_NUM})\s+(?:people|persons|travell?ers|guests|passengers|pax|of us)\b",
)
_ME_AND_OTHERS = _Pattern(
    rf"\b(?:(?:me|i|myself)\s+(?:and|\+|&|plus)|with)\s+(?:my\s+)?(?P<n>{_NUM})\s+"
    r"(?:friends?|others|kids|children|colleagues|buddies|pals|mates|family members|people)\b",
)
_GROUP_OF = _Pattern(rf"\b(?:family|group|party|team)\s+of\s+(?P<n>{_NUM})\b")
_FOR_COUNT = _Pattern(
    rf"\b(?:table\s+)?for\s+(?P<n>{_NUM})\b"
    r"(?=\s*(?:$|[,.;:!?)\u2591]|(?:and|in|to|from|on|at|with|under|below|for|during|next|this|starting"
    r"|leaving|departing|travell?ing|going|please|max|budget|around|by|via|over|between|who|staying)\b))",
)
_PAIR = _Pattern(
    r"\b(?:couples?\b(?!\s+of)|honeymoon(?:ers)?|(?:with|and)\s+my\s+(?:wife|husband|partner"
    r"|girlfriend|boyfriend|fianc[eé]e?|spouse)|my\s+(?:wife|husband|partner|girlfriend|boyfriend|fianc[eé]e?"
    r"|spouse)\s+and\s+(?:i|me)|the\s+two\s+of\s+us|both\s+of\s+us)\b",
)
_SOLO = _Pattern(r"\b(?:solo|alone|just\s+me|only\s+me|by\s+myself|on\s+my\s+own|single\s+traveller)\b")


_COUNTED_PARTIES: tuple[_Pattern, ...] = (
    _PEOPLE,
    _GROUP_OF,
    _FOR_COUNT,
)
_IMPLIED_PARTIES: tuple[tuple[_Pattern, int], ...] = ((_PAIR, 2), (_SOLO, 1))


def _read_travelers(scan: _Scan) -> int | None:
    """The party size: counted members ("2 adults and 1 child"), a count, or one implied by words."""
    for match in scan.find(_ME_AND_OTHERS):  # "me and my 2 kids": the speaker counts too
        scan.consume(match.start(), match.end())
        return _number(match["n"]) + 1
    members = list(scan.find(_PARTY_MEMBERS))
    if members:
        for member in members:
            scan.consume(member.start(), member.end())
        return sum(_number(m["n"]) for m in members)
    for pattern in _COUNTED_PARTIES:
        for match in scan.find(pattern):
            scan.consume(match.start(), match.end())
            return _number(match["n"])
    for pattern, party in _IMPLIED_PARTIES:
        for match in scan.find(pattern):
            scan.note("travelers", f"{party} traveller{'s' if party > 1 else ''} from '{match.group(0)}'")
            return party
    return None
