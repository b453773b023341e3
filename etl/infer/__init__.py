"""Scoring StateVectors into per-second activities, activity segments and work cycles."""
