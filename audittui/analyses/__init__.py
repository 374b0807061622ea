"""Analyses over the index: summaries, latency, one row per request, the histogram and the
list's rows. (Findings and the policy lab, public packages of their own, are this layer too.)"""
