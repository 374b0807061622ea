"""MITRE ATT&CK technique names, for the ids the rules carry (``techniques``): the techniques
of the Containers matrix, and the Enterprise ones the pack's rules also name (what a command
run in a container does: scripting, tool transfer, tunnels, credential files). Data, not
logic: a rule may name an id missing here; it is then shown by its id alone (a sub-technique
falls back to its technique's name)."""

from __future__ import annotations

TECHNIQUES: dict[str, str] = {
    # Initial access
    "T1190": "Exploit Public-Facing Application",
    "T1133": "External Remote Services",
    "T1078": "Valid Accounts",
    "T1078.001": "Valid Accounts: Default Accounts",
    "T1078.003": "Valid Accounts: Local Accounts",
    "T1078.004": "Valid Accounts: Cloud Accounts",
    # Execution
    "T1609": "Container Administration Command",
    "T1610": "Deploy Container",
    "T1053": "Scheduled Task/Job",
    "T1053.007": "Scheduled Task/Job: Container Orchestration Job",
    "T1204": "User Execution",
    "T1204.003": "User Execution: Malicious Image",
    "T1059": "Command and Scripting Interpreter",
    "T1546": "Event Triggered Execution",
    # Persistence
    "T1098": "Account Manipulation",
    "T1098.006": "Account Manipulation: Additional Container Cluster Roles",
    "T1136": "Create Account",
    "T1136.001": "Create Account: Local Account",
    "T1543": "Create or Modify System Process",
    "T1543.005": "Create or Modify System Process: Container Service",
    "T1525": "Implant Internal Image",
    "T1556": "Modify Authentication Process",
    # Privilege escalation
    "T1611": "Escape to Host",
    "T1068": "Exploitation for Privilege Escalation",
    "T1548": "Abuse Elevation Control Mechanism",
    # Defense evasion
    "T1612": "Build Image on Host",
    "T1562": "Impair Defenses",
    "T1562.001": "Impair Defenses: Disable or Modify Tools",
    "T1070": "Indicator Removal",
    "T1036": "Masquerading",
    "T1036.005": "Masquerading: Match Legitimate Resource Name or Location",
    "T1134": "Access Token Manipulation",
    "T1550": "Use Alternate Authentication Material",
    "T1550.001": "Use Alternate Authentication Material: Application Access Token",
    # Credential access
    "T1110": "Brute Force",
    "T1110.001": "Brute Force: Password Guessing",
    "T1110.003": "Brute Force: Password Spraying",
    "T1110.004": "Brute Force: Credential Stuffing",
    "T1528": "Steal Application Access Token",
    "T1552": "Unsecured Credentials",
    "T1552.001": "Unsecured Credentials: Credentials In Files",
    "T1552.007": "Unsecured Credentials: Container API",
    "T1552.005": "Unsecured Credentials: Cloud Instance Metadata API",
    "T1003.008": "OS Credential Dumping: /etc/passwd and /etc/shadow",
    "T1040": "Network Sniffing",
    # Discovery
    "T1613": "Container and Resource Discovery",
    "T1046": "Network Service Discovery",
    "T1069": "Permission Groups Discovery",
    "T1087": "Account Discovery",
    # Collection, command and control
    "T1005": "Data from Local System",
    "T1105": "Ingress Tool Transfer",
    "T1572": "Protocol Tunneling",
    # Impact
    "T1485": "Data Destruction",
    "T1489": "Service Stop",
    "T1531": "Account Access Removal",
    "T1565.001": "Data Manipulation: Stored Data Manipulation",
    "T1490": "Inhibit System Recovery",
    "T1496": "Resource Hijacking",
    "T1496.001": "Resource Hijacking: Compute Hijacking",
    "T1498": "Network Denial of Service",
    "T1499": "Endpoint Denial of Service",
}


def technique_name(technique: str) -> str:
    """The technique's name ("" when this table lacks it and its parent technique)."""
    name = TECHNIQUES.get(technique)
    if name is None and "." in technique:
        parent = TECHNIQUES.get(technique.split(".")[0])
        return f"{parent}: {technique.split('.')[1]}" if parent else ""
    return name or ""


def technique_label(technique: str) -> str:
    """``T1609 Container Administration Command``, or the id alone when unnamed."""
    name = technique_name(technique)
    return f"{technique} {name}" if name else technique
