"""Reading procurement requests without a model: numbers, units, dates, segments, corrections (no product words)."""
