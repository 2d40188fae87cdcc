"""The centre's content platform (issue 19): one record published to the website (一网) and the official
account (一微) after three reviews, and the hospitals' health-education video library (科普数据库)."""
