"""The demo corpus's sentences (written for this project): participant answers by label, the
interviewer's questions, preambles and backchannels. Kept apart from the corpus builder
(demo/corpus.py) so both stay short; changing a sentence changes the corpus (CORPUS_VERSION)."""

from __future__ import annotations

# ----------------------------------------------------------------------------------------
# Sentences written for the project. Plain, first-person interview answers about family,
# work, sleep and everyday life, so the sentiment is document-level and not topic-level.
# ----------------------------------------------------------------------------------------
POSITIVE = [
    "Honestly, things have been really good at home lately.",
    "We went camping by the lake and it was wonderful.",
    "My daughter and I laugh together almost every evening.",
    "I feel proud of how much my son has grown this year.",
    "Work has been busy, but I enjoy it and my team is great.",
    "I have been sleeping well and I wake up feeling rested.",
    "We cook dinner together on Sundays and everyone loves it.",
    "My friends threw me a surprise party and I was so happy.",
    "I finally finished the garden and it looks beautiful.",
    "The kids are doing great at school and they like their teachers.",
    "I feel calm and hopeful about the next few months.",
    "We talk openly in our family, and that makes me glad.",
    "Last weekend we visited my parents and it was a lovely day.",
    "I started running again and I feel full of energy.",
    "My partner is very supportive, and I am grateful for that.",
    "I love the quiet mornings when the whole house is peaceful.",
    "We adopted a puppy and everyone adores her.",
    "I got a promotion, and I am excited about the new role.",
    "Our holiday at the beach was the best week in years.",
    "I feel really close to my brother these days.",
    "The children helped their grandmother and I was delighted.",
    "Everything feels lighter now, and I am enjoying life.",
    "We celebrated my birthday with a big happy dinner.",
    "I think we are in a really good place as a family.",
    "My son made the team and he was thrilled about it.",
    "I feel confident, and I am looking forward to the summer.",
    "We play board games on Friday nights and it is so much fun.",
    "I am thankful for my friends, they make me smile every day.",
]

NEGATIVE = [
    "Honestly, things have been really hard at home lately.",
    "I feel tired all the time and I cannot sleep at night.",
    "We argue almost every evening and it wears me down.",
    "I am worried about my son, he barely talks to me anymore.",
    "Work has been stressful and I dread going in every morning.",
    "I feel lonely, even when the whole family is in the house.",
    "My mother is sick and I am scared about what will happen.",
    "Nothing seems to go right, no matter how hard I try.",
    "I lost my job in the spring and money has been a disaster.",
    "The kids are struggling at school and I feel like I failed them.",
    "I get angry over small things and then I feel terrible.",
    "We cancelled our holiday because everything fell apart.",
    "I cried in the car after work again last week.",
    "My partner and I hardly speak, and it hurts.",
    "I feel hopeless about the future most days.",
    "My daughter was bullied and I could not protect her.",
    "The house feels tense and everyone is unhappy.",
    "I have been anxious and my chest feels tight all the time.",
    "My brother and I had a bad fight and we do not talk now.",
    "I feel guilty that I am always too exhausted to play with the kids.",
    "It has been a miserable year, to be honest.",
    "I keep thinking that something awful is going to happen.",
    "Our dog died in the winter and we are still heartbroken.",
    "I feel ashamed that I lose my temper with the children.",
    "Every day feels heavy and I have no energy left.",
    "I am frustrated, nobody listens to me at home.",
    "The doctor gave us bad news and I am frightened.",
    "I feel empty, and I do not enjoy anything anymore.",
]

NEUTRAL = [
    "We live in a small house near the middle of town.",
    "I usually get up around seven and make breakfast.",
    "My son is in grade eight and my daughter is in grade five.",
    "I work at an office downtown, mostly on the computer.",
    "On weekdays the kids take the bus to school.",
    "We have dinner at about six most evenings.",
    "My partner works shifts at the hospital.",
    "On Saturdays we do the shopping and clean the house.",
    "My parents live about an hour away by car.",
    "The children share a room at the moment.",
    "I drive to work, it takes about twenty minutes.",
    "We moved to this street about four years ago.",
    "In the evening I usually read or watch the news.",
    "My daughter plays piano and my son plays soccer.",
    "We have a cat and two fish.",
    "The school is a ten minute walk from our house.",
    "I do the laundry on Tuesdays and Thursdays.",
    "My brother lives in another province.",
    "We usually go to bed around eleven.",
    "I take the train when the weather is bad.",
    "The kids have homework most nights.",
    "We visit my in-laws once or twice a month.",
    "I keep a calendar on the fridge for appointments.",
    "My partner does most of the cooking during the week.",
    "In summer the kids go to a day camp.",
    "I had a routine check up at the clinic last month.",
    "We bought a new table for the kitchen.",
    "The library is open late on Wednesdays.",
]

QUESTIONS = [
    "Can you tell me about a typical day at home?",
    "How have things been with your family recently?",
    "What do you usually do on weekends?",
    "How would you describe your relationship with your children?",
    "How has work been for you lately?",
    "How have you been sleeping?",
    "Tell me about the last holiday you had.",
    "How do you get along with your partner?",
    "What happens when there is a disagreement at home?",
    "How do you feel about the coming months?",
    "Who do you talk to when something is on your mind?",
    "Can you describe your son or daughter in a few words?",
]

#: context the interviewer gives before a question when CorpusSpec.long_questions is on (statements
#: only: the question still ends the turn)
PREAMBLES = [
    "I would like to understand how things are going for you and the people you live with.",
    "Many families tell us that their routines change a lot from one season to the next.",
    "There are no right or wrong answers here, so please say whatever comes to mind.",
    "Some people find this part of the interview easy and others find it a little harder.",
    "We ask everyone who takes part in the study the same set of questions.",
    "I am going to read the next question exactly as it is written on my sheet.",
    "Take your time, and feel free to give an example from the last few weeks.",
    "This next part is about your everyday life, at home and outside of it.",
    "We are interested in the small details as much as the big events.",
    "Earlier you mentioned a few things that I would like to come back to now.",
    "People often say that the evenings are the busiest time of their day.",
    "It can help to think about one particular week when you answer this one.",
]

BACKCHANNELS = ["I see.", "Okay.", "Thank you.", "Right.", "Mm hm, go on."]

POOLS = {"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL}
