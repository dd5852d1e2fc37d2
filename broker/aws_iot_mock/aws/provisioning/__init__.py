"""Fleet provisioning by claim, pure.

The template engine (`engine`), the device-side MQTT payloads and ownership tokens (`device`),
the provisioning-template control plane (`templates`) and the claim certificate's policy
(`claim_policy`).
"""
