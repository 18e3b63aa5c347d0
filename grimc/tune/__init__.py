"""Measured auto-tuning of kernel schedules (`grimc tune`, docs/tuning.md).

tasks: the distinct tuning tasks of an optimized module, each as a one-op
module with its real weights; space: candidate knob values per schedule
kind; measure: build candidates with a process pool of clang jobs, check them
against the default schedule, time (or count) only their kernel; search: the
default, the nearest tuned neighbours, then a seeded genetic algorithm;
tuner: the loop over tasks that fills the database (grimc.tunedb).
"""
