"""The wire contract both sides share, standard library only: the protocol's constants and
messages, the settings table, the client and its ZeroMQ (ZMTP 3) connection, how to start the
server. The server imports it as `nst_contract`; inside GIMP the plug-in imports it by the same
name from its own folder (install.py copies this folder there)."""
