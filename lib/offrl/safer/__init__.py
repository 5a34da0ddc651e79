"""The SAFER study (Slack et al. 2022) in one place: the safe-grasp task family and its scripted data
(``grasp``, ``grasp_script``), the skill priors and their safety bounds (``priors``), downstream RL over
a prior (``downstream``), its Table 1 and figures (``report``) and its commands (``commands``).

It sits above the shared package (algorithms, report helpers) and nothing below imports it.
"""
