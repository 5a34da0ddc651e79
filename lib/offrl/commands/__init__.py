"""The command line's areas, each adding its commands to the trunk (``offrl.cli``) with ``add_commands(add)``:
``data`` (behaviour policies, datasets, indexes), ``offline`` (train, evaluate, bench), ``report`` (tables and
figures), ``findings``; SAFER's are ``offrl.safer.commands``. Options come from the config dataclasses
(``offrl.options``) where a command runs one.
"""
