DROP TABLE proposal_reviews;
DROP TABLE proposals;
