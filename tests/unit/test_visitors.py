"""Visitor ids: what they depend on."""

from app.clicks.visitors import visitor_id


def test_visitor_ids_depend_on_salt_address_and_agent() -> None:
    a, b = b"a" * 32, b"b" * 32
    assert visitor_id(a, "203.0.113.1", "ua") == visitor_id(a, "203.0.113.1", "ua")
    assert (
        len(
            {
                visitor_id(a, "203.0.113.1", "ua"),
                visitor_id(b, "203.0.113.1", "ua"),
                visitor_id(a, "203.0.113.2", "ua"),
                visitor_id(a, "203.0.113.1", "ub"),
            }
        )
        == 4
    )
