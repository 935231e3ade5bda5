"""The comparison engine: align two node trees, attribute differing bytes, apply the rules."""
