"""The pure domain: the rules of a case, with no SQL, sockets or clock inside.

Inputs and ``now`` in, decisions out: the case lifecycle (one table for every change to a
case), the service catalog, the working-day calendar and deadlines, the statistics
rules, receipt numbers and applicants. Every floor above builds on these; nothing here
imports from them.
"""
