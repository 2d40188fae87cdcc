"""Accompanied visits (云陪诊): invitations, the companion's two factors, the escort room, revocation."""
