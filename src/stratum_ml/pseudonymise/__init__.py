"""Pseudonymisation at the source, and re-identification under control.

Public API
----------
load_mapping(path) -> Mapping                    the raw -> contract mapping, schema-checked
pseudonymise(raw_dir, mapping, out_dir, key)     raw extracts -> a source folder (streaming, atomic)
PseudonymKey, write_key_file, load_key_file      the key file (one 256-bit secret, mode 0600)
rotate_key(...)                                  a new key, and the history re-pseudonymised with it
reidentify(...)                                  the raw identity behind a pseudonym, audited
"""
