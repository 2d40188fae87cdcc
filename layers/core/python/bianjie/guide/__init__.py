"""Butler guidance (管家式指引): the visit board, home-page to-do cards, and the notification fan-out."""
